"""The upload box says when a file was refused (issue 18, item 12): FilePond's green "Upload
complete" only means the bytes arrived, and the previous data stayed on screen unexplained."""

import io
import logging

import numpy as np
from bokeh.document import Document
from panel.io.state import set_curdoc
from panel.io.state import state as pn_state

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


def test_the_upload_box_logs_no_missing_extension_warning(caplog):
    """A served page loads FilePond's scripts on demand, not as Panel's "filedropper" extension:
    Panel then warned "extension was not loaded" on every upload session (issue 18, item 12).
    Planted (the call to ``file_dropper_loaded`` removed): fails."""
    doc = Document()
    with set_curdoc(doc):
        pn_state._extensions_[doc] = ["tabulator"]  # what a served page loaded
        try:
            box, _ = upload_box(ExplorerState())
            with caplog.at_level(logging.WARNING):
                box.get_root(doc)
        finally:
            del pn_state._extensions_[doc]
    assert not [r for r in caplog.records if "extension was not loaded" in r.getMessage()]
