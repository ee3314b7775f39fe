"""The tuning-curve view without a browser: plots are reused for a data set with the same
variables, rebuilt for new ones, and follow the Include boxes of the current rows."""

from bokeh.core.validation import check_integrity
from bokeh.document import Document

from widgets.page import explorer
from widgets.plots import TuningCurvesView
from widgets.state import ExplorerState
from widgets.vocabulary import RECORDING


def test_plots_are_reused_across_seeds_and_follow_the_new_rows():
    state = ExplorerState(n_samples=3_000)
    view = TuningCurvesView(state)
    state.start()
    panes = list(view.__panel__().objects)
    assert len(panes) == 3 and all(p.visible for p in panes)

    state.seed = 7  # same variables: same plots, new rows
    assert list(view.__panel__().objects) == panes
    state.variables[1].include = False
    assert [p.visible for p in panes] == [True, False, True]

    state.source = RECORDING  # other variables: new plots
    assert all(p not in panes for p in view.__panel__().objects)
    assert [p.visible for p in view.__panel__().objects] == [True, True, False]  # speed off


def test_the_page_passes_bokehs_integrity_checks():
    """The server skips Bokeh's integrity checks of each new tab's document (warm_up.py): a page
    model that breaks them (a glyph reading a missing column, a layout of unknown children, ...)
    is caught here."""
    models = explorer(n_samples=3_000).get_root(Document()).references()
    assert sum(type(m).__name__ == "GlyphRenderer" for m in models) >= 3 * 4  # figures too
    issues = check_integrity(models)
    assert issues.error == [], issues.error
