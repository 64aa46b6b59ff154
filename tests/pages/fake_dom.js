/* A small fake DOM for the customer page scripts (handlers/customer_pages/static/*.js): elements by id with values,
   event listeners (with preventDefault / stopImmediatePropagation), a form that records submit(), and a canvas whose
   drawing is recorded and whose data URL length can be set. */
"use strict";

function element(id, props) {
  const el = Object.assign({
    id, value: "", textContent: "", disabled: false, dataset: {}, listeners: {}, focused: 0, submitted: 0,
    addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); },
    focus() { this.focused += 1; }
  }, props || {});
  return el;
}

/* Fire `type` on `el` as a browser would: every listener in order until one stops propagation. */
function fire(el, type, extra) {
  const event = Object.assign({ type, defaultPrevented: false, stopped: false,
                                preventDefault() { this.defaultPrevented = true; },
                                stopImmediatePropagation() { this.stopped = true; } }, extra || {});
  for (const fn of el.listeners[type] || []) {
    fn(event);
    if (event.stopped) { break; }
  }
  return event;
}

function page(ids, data) {
  const els = {};
  ids.forEach((id) => { els[id] = element(id); });
  const button = element("submit", { textContent: "Save card" });
  ["card-form", "approval-form"].forEach((id) => {
    if (els[id]) {
      els[id].querySelector = (selector) => (selector === "button[type=submit]" ? button : null);
      els[id].submit = function () { this.submitted += 1; };
    }
  });
  els["page-data"] = element("page-data", { textContent: JSON.stringify(data) });
  const doc = { getElementById: (id) => els[id] || null };
  return { window: { document: doc }, els, button };
}

function canvas(dataUrlLength) {
  const strokes = [];
  return element("signature-pad", {
    width: 500, height: 160, strokes,
    getContext() {
      return { beginPath() {}, moveTo(x, y) { strokes.push(["move", x, y]); }, lineTo(x, y) { strokes.push(["line", x, y]); },
               stroke() {}, clearRect() {} };
    },
    getBoundingClientRect() { return { left: 10, top: 20, width: 250, height: 80 }; },
    toDataURL(type) { return "data:" + type + ";base64," + "A".repeat(dataUrlLength - 22); }
  });
}

module.exports = { element, fire, page, canvas };
