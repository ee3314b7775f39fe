// Three BokehJS redraw costs that a refit's data patch need not pay, one page error and one
// server warning, fixed in the browser. Loaded
// after BokehJS, before any view (widgets/_compat.py: redraw_fixes()), which calls this function
// with the BokehJS versions it was written against, [lowest, below) as "major.minor": Bokeh
// 3.8 to 3.9 (Panel 1.8 to 1.9). On any other BokehJS it changes nothing.
// - every paint rewrites each renderer's position stylesheet, even unchanged, and each rewrite
//   makes the browser recompute styles at the next read of a CSS variable (Bokeh reads several
//   per glyph, axis and legend): rewrites that change nothing are skipped
//   (InlineStyleSheet._update);
// - a legend rebuilds its items (DOM and swatch canvases) on any change of anything its items
//   reach, a glyph's data included: with the same items and labels, it now only restyles them
//   (hidden, inactive); its swatches are repainted with the plot as before
//   (LegendView.on_transitive_change);
// - every visual property read (line colour, width, text font, ...) asks the CSS cascade for a
//   `--bk-*` variable first (bokeh/bokeh#15286), about a thousand reads per refit: within one
//   task (one paint), where no such variable changes, each element's value is read once
//   (VisualProperties._get_css_value);
// - a grid (the tuning curves') whose set of plots changed threw "reading 'parent_style'" when
//   laid out before the new plots' views were built: it waits for them
//   (CSSGridBoxView._update_layout);
// - a model that arrived in a server patch (an upload box, a lazily built card's button) was
//   marked new in the browser, so the next browser message that named it (the upload, the
//   click) sent its whole definition back and the server logged "BokehUserWarning: reference
//   already known": such models are known to the server (Document.apply_json_patch).
([lowest, below]) => {
  if (!(window.Bokeh && Bokeh.require && Bokeh.version)) return;
  const number = (version) => version.split(".").slice(0, 2).map(Number);
  const before = (a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  const version = number(Bokeh.version);
  if (before(version, number(lowest)) || !before(version, number(below))) return;
  const {InlineStyleSheet} = Bokeh.require("core/dom");
  const update = InlineStyleSheet.prototype._update;
  InlineStyleSheet.prototype._update = function (css) {
    if (this.el.textContent !== css) update.call(this, css);
  };
  const {VisualProperties} = Bokeh.require("core/visuals/visual");
  let read = null;  // element -> (CSS variable -> value), for the current task
  VisualProperties.prototype._get_css_value = function (name) {
    if (read == null) {
      read = new Map();
      queueMicrotask(() => { read = null; });
    }
    const {el} = this.obj;
    let values = read.get(el);
    if (values == null) {
      values = new Map();
      read.set(el, values);
    }
    const key = `${this.css_prefix}${name}`;
    let value = values.get(key);
    if (value === undefined) {
      value = getComputedStyle(el).getPropertyValue(key);
      values.set(key, value);
    }
    return value;
  };
  const {LegendView} = Bokeh.require("models/annotations/legend");
  const {hidden} = Bokeh.require("styles/legend.css");
  const on_transitive_change = LegendView.prototype.on_transitive_change;
  LegendView.prototype.on_transitive_change = function (property, fn, options) {
    if (property === this.model.properties.items) {
      fn = () => {
        if (this.entries == null || this._should_rerender_items) {
          this._render_items();
          return;
        }
        for (const entry of this.entries) {
          entry.el.classList.toggle(hidden, !entry.item.visible);
          this._toggle_inactive(entry);
        }
      };
    }
    return on_transitive_change.call(this, property, fn, options);
  };
  // A grid whose children were just replaced builds their views asynchronously; a layout pass
  // meanwhile (another change of the same patch) indexed the views it has by child position and
  // threw "reading 'parent_style'". Lay out only the grid itself then: the rebuild lays it out.
  // (BokehJS 3.8-3.9: CSSGridBoxView._update_layout, LayoutDOMView._update_layout, child_views.)
  const {LayoutDOMView} = Bokeh.require("models/layouts/layout_dom");
  const {CSSGridBoxView} = Bokeh.require("models/layouts/css_grid_box");
  const grid_layout = CSSGridBoxView.prototype._update_layout;
  CSSGridBoxView.prototype._update_layout = function () {
    const building = this.child_views.length !== this.child_models.length;
    return (building ? LayoutDOMView.prototype._update_layout : grid_layout).call(this);
  };
  // Document._apply_json_patch adds every model it decodes to _new_models, the models that
  // create_json_patch (the next browser message) sends in full; the server sent these, so only
  // the models made in the browser stay new. (BokehJS 3.8-3.9: Document.apply_json_patch,
  // _new_models.)
  const {Document} = Bokeh.require("document/document");
  const apply_json_patch = Document.prototype.apply_json_patch;
  Document.prototype.apply_json_patch = function (patch, buffers) {
    const made_here = new Set(this._new_models);
    const result = apply_json_patch.call(this, patch, buffers);
    for (const model of [...this._new_models]) {
      if (!made_here.has(model)) this._new_models.delete(model);
    }
    return result;
  };
}
