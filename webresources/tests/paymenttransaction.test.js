"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { fakeXrm, formContext } = require("./fake_xrm.js");
const W365 = require("../w365_/scripts/paymenttransaction.js");

W365.Common.settings.sleep = () => Promise.resolve();
const ID = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d";
const CHARGE = 100000000, REFUND = 100000001, APPROVED = 100000001, DECLINED = 100000002;

function answering(...answers) {
  const asked = [];
  W365.Amount.settings.ask = (text, previous) => { asked.push({ text, previous }); return Promise.resolve(answers.shift()); };
  return asked;
}

function transactionForm(columns) {
  return formContext("w365_paymenttransaction", ID,
                     Object.assign({ w365_type: CHARGE, w365_outcome: APPROVED, w365_amount: 75.5 }, columns));
}

test("an empty amount refunds all that is left: Amount is not sent", async () => {
  global.Xrm = fakeXrm({ message: "Refunded 75.50." });
  const asked = answering("");
  const form = transactionForm();
  const outcome = await W365.PaymentTransaction.refund(form);
  assert.equal(outcome.status, "Succeeded");
  assert.equal(asked[0].previous, "");
  assert.match(asked[0].text, /charged 75\.50/);
  const { request, metadata } = Xrm.executed[0];
  assert.equal(metadata.operationName, "w365_RefundTransaction");
  assert.deepEqual(request.entity, { entityType: "w365_paymenttransaction", id: ID });
  assert.equal("Amount" in request, false);
  assert.equal(Xrm.alerts[0].text, "Refunded 75.50.");
  assert.deepEqual(form.refreshed, [false]);
});

test("a partial refund sends the amount as a decimal", async () => {
  global.Xrm = fakeXrm();
  answering("20.05");
  await W365.PaymentTransaction.refund(transactionForm());
  assert.equal(Xrm.executed[0].request.Amount, 20.05);
  assert.equal(Xrm.executed[0].metadata.parameterTypes.Amount.typeName, "Edm.Decimal");
});

test("more than the charge or a bad amount is asked again; cancel sends nothing", async () => {
  global.Xrm = fakeXrm();
  const asked = answering("75.51", "-1", null);
  const outcome = await W365.PaymentTransaction.refund(transactionForm());
  assert.equal(outcome.status, "Cancelled");
  assert.match(asked[1].text, /cannot be more than 75\.50/);
  assert.equal(asked.length, 3);
  assert.equal(Xrm.executed.length, 0);
});

test("the service's refusal (e.g. not settled yet) is shown", async () => {
  global.Xrm = fakeXrm({ status: 100000001, message: "This charge has not settled yet" });
  answering("10");
  const outcome = await W365.PaymentTransaction.refund(transactionForm());
  assert.equal(outcome.status, "Failed");
  assert.equal(Xrm.alerts[0].title, "Not done");
});

test("the Refund button is enabled only on an approved charge", () => {
  const can = (w365_type, w365_outcome) => W365.PaymentTransaction.canRefund(transactionForm({ w365_type, w365_outcome }));
  assert.equal(can(CHARGE, APPROVED), true);
  assert.equal(can(CHARGE, DECLINED), false);
  assert.equal(can(REFUND, APPROVED), false);
  assert.equal(can(CHARGE, null), false);
  assert.equal(W365.PaymentTransaction.canRefund(formContext("w365_paymenttransaction", ID, {})), false);
});

test("the always-shown Refund command refuses a declined attempt or a refund row, sending nothing", async () => {
  for (const columns of [{ w365_outcome: DECLINED }, { w365_type: REFUND }]) {
    global.Xrm = fakeXrm();
    const asked = answering("10.00");
    const outcome = await W365.PaymentTransaction.refund(transactionForm(columns));
    assert.equal(outcome.status, "Cancelled");
    assert.equal(asked.length, 0);
    assert.equal(Xrm.executed.length, 0);
    assert.match(Xrm.alerts[0].text, /Only an approved charge/);
  }
});
