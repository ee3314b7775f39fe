"""Ticking "2-D map" (issue 17): the new layout is encoded and its solvers compiled on a worker
thread (``compiles.prepare_off_loop``), so the server's event loop keeps turning meanwhile (a
heartbeat task on the loop counts its turns), and the tab then refits with the map unless its
map settings changed since."""

import asyncio
import threading
from functools import partial

from glm_core import explorer
from widgets.compiles import prepare_off_loop, solver_compiles
from widgets.state import ExplorerState


def test_the_map_layout_compiles_on_a_worker_thread_while_the_loop_turns(fresh_process,
                                                                         monkeypatch):
    state = ExplorerState(n_samples=3_000, seed=4)
    state.start()
    compiled_on = []
    real = explorer.warm_up

    def recorded(*args):
        compiled_on.append(threading.current_thread())
        real(*args)

    monkeypatch.setattr(explorer, "warm_up", recorded)
    build = partial(state.encode, state.session, state.unit, state.variables, True)
    taken = []

    async def tick_the_map():
        beats = [0]

        async def heartbeat():  # what another tab's key press needs: turns of the loop
            while True:
                beats[0] += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(heartbeat())
        await prepare_off_loop(build, state.regularizer, taken.append)
        during = beats[0]
        task.cancel()
        return during

    beats = asyncio.run(tick_the_map())
    assert compiled_on and all(t is not threading.main_thread() for t in compiled_on)
    assert beats > 100  # the loop kept turning through the encoding and the compile
    [result] = taken
    encoding = result()
    assert encoding.pairs and solver_compiles.ready(encoding, state.regularizer)

    # the tab takes it only while its map settings are those it was built for
    state._take_encoding((True, state.joint_nx + 1, state.joint_ny), result)
    assert not state.encoding.pairs and not state.maps
    with state._no_refresh():
        state.joint_map = True
    state._take_encoding((True, state.joint_nx, state.joint_ny), result)
    assert state.encoding is encoding and len(state.maps) == 1 and state.error == ""
