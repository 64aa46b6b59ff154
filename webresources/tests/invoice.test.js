"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { fakeXrm, formContext } = require("./fake_xrm.js");
const W365 = require("../w365_/scripts/invoice.js");

W365.Common.settings.sleep = () => Promise.resolve();
const ID = "0c1d2e3f-4a5b-4c6d-8e7f-808182838485";

function answering(...answers) {
  const asked = [];
  W365.Amount.settings.ask = (text, previous) => { asked.push({ text, previous }); return Promise.resolve(answers.shift()); };
  return asked;
}

function invoiceForm(columns) {
  return formContext("invoice", ID, Object.assign({ statecode: 0, statuscode: 1, totalamount: 100, w365_amountpaid: 0,
                                                    w365_balance: 100 }, columns));
}

test("charge offers the balance and sends it as an exact decimal", async () => {
  global.Xrm = fakeXrm({ message: "Charged 100.00." });
  const asked = answering("100.00");
  const form = invoiceForm({ w365_balance: 100 });
  const outcome = await W365.Invoice.charge(form);
  assert.equal(outcome.status, "Succeeded");
  assert.equal(asked[0].previous, "100.00");
  assert.match(asked[0].text, /balance 100\.00/);
  const { request, metadata } = Xrm.executed[0];
  assert.equal(metadata.operationName, "w365_ChargeInvoice");
  assert.deepEqual(request.entity, { entityType: "invoice", id: ID });
  assert.equal(request.Amount, 100);
  assert.equal(metadata.parameterTypes.Amount.typeName, "Edm.Decimal");
  assert.deepEqual(Xrm.alerts, [{ title: "Done", text: "Charged 100.00." }]);
  assert.deepEqual(form.refreshed, [false]);
});

test("a lower amount is a partial payment", async () => {
  global.Xrm = fakeXrm();
  answering("40.10");
  await W365.Invoice.charge(invoiceForm({ w365_balance: 60.25 }));
  assert.equal(Xrm.executed[0].request.Amount, 40.1);
  assert.equal(JSON.stringify({ Amount: Xrm.executed[0].request.Amount }), '{"Amount":40.1}');
});

test("more than the balance, zero and three decimals are asked again, never sent", async () => {
  global.Xrm = fakeXrm();
  const asked = answering("60.26", "0", "10.005", "60.25");
  await W365.Invoice.charge(invoiceForm({ w365_balance: 60.25 }));
  assert.equal(asked.length, 4);
  assert.match(asked[1].text, /cannot be more than 60\.25/);
  assert.match(asked[2].text, /more than zero/);
  assert.match(asked[3].text, /two decimal places/);
  assert.equal(Xrm.executed.length, 1);
  assert.equal(Xrm.executed[0].request.Amount, 60.25);
});

test("cancelling the dialog sends nothing", async () => {
  global.Xrm = fakeXrm();
  answering(null);
  const outcome = await W365.Invoice.charge(invoiceForm());
  assert.equal(outcome.status, "Cancelled");
  assert.equal(Xrm.executed.length, 0);
});

test("without w365_balance the balance is total minus paid, as the service derives it", async () => {
  global.Xrm = fakeXrm();
  const asked = answering("30.01");
  await W365.Invoice.charge(invoiceForm({ w365_balance: null, totalamount: 80, w365_amountpaid: 50 }));
  assert.equal(asked[0].previous, "30.00");
  assert.equal(asked.length, 2);
  assert.equal(Xrm.executed.length, 0);
});

test("an invoice with nothing left to pay says so and asks nothing", async () => {
  global.Xrm = fakeXrm();
  const asked = answering("1");
  const outcome = await W365.Invoice.charge(invoiceForm({ w365_balance: 0 }));
  assert.equal(outcome.status, "Cancelled");
  assert.equal(asked.length, 0);
  assert.equal(Xrm.alerts[0].title, "Nothing to charge");
  assert.equal(Xrm.executed.length, 0);
});

test("a refusal from the service is shown and the form is not refreshed", async () => {
  global.Xrm = fakeXrm({ status: 100000001, message: "The card was declined." });
  answering("10");
  const form = invoiceForm();
  const outcome = await W365.Invoice.charge(form);
  assert.equal(outcome.status, "Failed");
  assert.equal(Xrm.alerts[0].text, "The card was declined.");
  assert.deepEqual(form.refreshed, []);
});

test("the Charge button is disabled on a fully paid or canceled invoice only", () => {
  const can = (statecode, statuscode) => W365.Invoice.canCharge(invoiceForm({ statecode, statuscode }));
  assert.equal(can(0, 1), true);                 // Active, New
  assert.equal(can(2, 100002), true);            // Paid, Partial
  assert.equal(can(2, 100001), false);           // Paid, Complete
  assert.equal(can(3, 100003), false);           // Canceled
  assert.equal(W365.Invoice.canCharge(formContext("invoice", ID, {})), true);   // columns not on the form
});

test("the always-shown Charge command refuses a paid or canceled invoice, sending nothing", async () => {
  for (const columns of [{ statecode: 2, statuscode: 100001 }, { statecode: 3, statuscode: 100003 }]) {
    global.Xrm = fakeXrm();
    const asked = answering("10.00");
    const outcome = await W365.Invoice.charge(invoiceForm(columns));
    assert.equal(outcome.status, "Cancelled");
    assert.equal(asked.length, 0);
    assert.equal(Xrm.executed.length, 0);
    assert.match(Xrm.alerts[0].text, /paid in full or canceled/);
  }
});
