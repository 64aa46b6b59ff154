"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { fire, page, canvas } = require("./fake_dom.js");
const signature = require("../../handlers/customer_pages/static/signature.js");

const IDS = ["card-form", "form-errors", "signatureName", "signatureImage", "signature-clear"];

function signingPage(limit, dataUrlLength) {
  const p = page(IDS, { formId: "card-form", signatureLimit: limit });
  p.els["signature-pad"] = canvas(dataUrlLength || 1000);
  const ids = p.window.document.getElementById;
  p.window.document.getElementById = (id) => (id === "signature-pad" ? p.els["signature-pad"] : ids(id));
  // a later handler stands for the card form's: it must not run when the signature is missing
  signature.start(p.window);
  p.later = 0;
  p.els["card-form"].addEventListener("submit", () => { p.later += 1; });
  return p;
}

function draw(p) {
  const pad = p.els["signature-pad"];
  fire(pad, "pointerdown", { clientX: 20, clientY: 30, pointerId: 1 });
  fire(pad, "pointermove", { clientX: 60, clientY: 50 });
  fire(pad, "pointerup");
}

test("a typed name and a drawing give a PNG data URL and let the card form's handler run", () => {
  const p = signingPage(5000);
  p.els.signatureName.value = "Nancy Davolio";
  draw(p);
  // canvas pixels, not CSS pixels: (20-10)*500/250 = 20, (30-20)*160/80 = 20; then (100, 60)
  assert.deepEqual(p.els["signature-pad"].strokes, [["move", 20, 20], ["line", 100, 60]]);
  const event = fire(p.els["card-form"], "submit");
  assert.equal(event.defaultPrevented, false);
  assert.match(p.els.signatureImage.value, /^data:image\/png;base64,A+$/);
  assert.equal(p.later, 1);
});

test("no name, or no drawing, stops the submit before anything else runs", () => {
  const p = signingPage(5000);
  p.els.signatureName.value = " N ";
  draw(p);
  let event = fire(p.els["card-form"], "submit");
  assert.equal(event.defaultPrevented, true);
  assert.equal(p.els["form-errors"].textContent, "Please type your full name to sign.");
  p.els.signatureName.value = "Nancy Davolio";
  fire(p.els["signature-clear"], "click");
  event = fire(p.els["card-form"], "submit");
  assert.equal(p.els["form-errors"].textContent, "Please sign in the signature box.");
  assert.equal(event.defaultPrevented, true);
  assert.equal(p.later, 0);
  assert.equal(p.els["form-errors"].focused, 2);
});

test("a signature over the size the service accepts is refused in the page", () => {
  const p = signingPage(500, 501);
  p.els.signatureName.value = "Nancy Davolio";
  draw(p);
  const event = fire(p.els["card-form"], "submit");
  assert.equal(event.defaultPrevented, true);
  assert.equal(p.els.signatureImage.value, "");
  assert.match(p.els["form-errors"].textContent, /too detailed/);
  assert.equal(p.later, 0);
});

test("a move without the pen down draws nothing", () => {
  const p = signingPage(5000);
  fire(p.els["signature-pad"], "pointermove", { clientX: 60, clientY: 50 });
  assert.deepEqual(p.els["signature-pad"].strokes, []);
});
