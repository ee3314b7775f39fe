"""The upload box says when a file was refused (issue 18, item 12): FilePond's green "Upload
complete" only means the bytes arrived, and the previous data stayed on screen unexplained."""

import io

import numpy as np

from widgets.controls import upload_box
from widgets.state import ExplorerState
from widgets.vocabulary import UPLOAD


def _npz(n=3000, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    np.savez(buffer, bin_width=0.02, **{"count:c1": rng.poisson(0.5, n),
                                       "var:track[cm]": np.cumsum(rng.normal(0, 1, n))})
    return buffer.getvalue()


def test_a_refused_file_gets_a_fresh_box_and_a_red_note_naming_it():
    state = ExplorerState(source=UPLOAD, upload=("good.npz", _npz()))
    state.start()
    good = state.session
    assert good is not None and not state.error
    box, note = upload_box(state)
    first = box.objects[0]
    first.value = {"bad.csv": "count:c1,var:x\n1,2\n,3\n"}  # a blank count cell
    assert "row 2" in state.error
    assert note.visible and "bad.csv was not loaded" in note.object and "row 2" in note.object
    assert state.session is good and good.source in note.object
    assert box.objects[0] is not first  # a fresh box: no green "Upload complete"
    box.objects[0].value = {"again.npz": _npz(seed=1)}
    assert state.session is not good and not state.error
    assert not note.visible
