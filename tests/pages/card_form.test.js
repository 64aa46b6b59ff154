"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { fire, page } = require("./fake_dom.js");
const cardForm = require("../../handlers/customer_pages/static/card_form.js");

const IDS = ["card-form", "form-errors", "cardNumber", "expMonth", "expYear", "cardCode", "dataDescriptor", "dataValue"];
const AUTH = { authData: { clientKey: "client-key", apiLoginID: "login-id" } };

function filled(accept) {
  const p = page(IDS, AUTH);
  Object.assign(p.els.cardNumber, { value: "4111 1111 1111 1111" });
  Object.assign(p.els.expMonth, { value: "12" });
  Object.assign(p.els.expYear, { value: "2030" });
  Object.assign(p.els.cardCode, { value: " 123 " });
  if (accept) { p.window.Accept = accept; }
  cardForm.start(p.window);
  return p;
}

test("the card goes to Accept.js only; the form posts the nonce with the card inputs emptied", () => {
  const sent = [];
  const p = filled({ dispatchData(secureData, handler) {
    sent.push(secureData);
    handler({ messages: { resultCode: "Ok" }, opaqueData: { dataDescriptor: "COMMON.ACCEPT.INAPP.PAYMENT",
                                                            dataValue: "nonce-1" } });
  } });
  const event = fire(p.els["card-form"], "submit");
  assert.equal(event.defaultPrevented, true);                 // the first submit never posts the card
  assert.deepEqual(sent, [{ authData: AUTH.authData, cardData: { cardNumber: "4111111111111111", month: "12",
                                                                 year: "2030", cardCode: "123" } }]);
  assert.equal(p.els.dataDescriptor.value, "COMMON.ACCEPT.INAPP.PAYMENT");
  assert.equal(p.els.dataValue.value, "nonce-1");
  for (const id of cardForm.CARD) { assert.equal(p.els[id].value, "", id); }
  assert.equal(p.els["card-form"].submitted, 1);
  assert.equal(fire(p.els["card-form"], "submit").defaultPrevented, false);   // with the nonce in, it posts
});

test("an Accept.js error is shown, nothing is posted and the button can be pressed again", () => {
  const p = filled({ dispatchData(secureData, handler) {
    assert.equal(p.button.disabled, true);
    assert.equal(p.button.textContent, "Saving\u2026");
    handler({ messages: { resultCode: "Error", message: [{ code: "E_WC_05", text: "Please provide valid credit card number." },
                                                        { code: "E_WC_06", text: "Please provide valid expiration month." }] } });
  } });
  fire(p.els["card-form"], "submit");
  assert.equal(p.els["form-errors"].textContent,
               "Please provide valid credit card number. Please provide valid expiration month.");
  assert.equal(p.els["form-errors"].focused, 1);
  assert.equal(p.button.disabled, false);
  assert.equal(p.button.textContent, "Save card");
  assert.equal(p.els["card-form"].submitted, 0);
  assert.equal(p.els.dataValue.value, "");
  assert.equal(p.els.cardNumber.value, "4111 1111 1111 1111");           // kept for the person to correct
});

test("without Accept.js the page says so and posts nothing", () => {
  const p = filled(null);
  const event = fire(p.els["card-form"], "submit");
  assert.equal(event.defaultPrevented, true);
  assert.match(p.els["form-errors"].textContent, /could not be loaded/);
  assert.equal(p.els["card-form"].submitted, 0);
});

test("an answer without a nonce is an error, never a post", () => {
  const p = filled({ dispatchData(secureData, handler) { handler(undefined); } });
  fire(p.els["card-form"], "submit");
  assert.equal(p.els["form-errors"].textContent, "The card could not be checked.");
  assert.equal(p.els["card-form"].submitted, 0);
});

test("a page without the card form is left alone", () => {
  const p = page(["approval-form", "form-errors"], {});
  assert.equal(cardForm.start(p.window), null);
});
