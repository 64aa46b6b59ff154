"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { fakeXrm, formContext } = require("./fake_xrm.js");
const W365 = require("../w365_/scripts/common.js");

W365.Common.settings.sleep = () => Promise.resolve();
const ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

test("a button calls the Custom API with a fresh RequestId and shows the operation's message", async () => {
  global.Xrm = fakeXrm({ delayPolls: 2, message: "Charged 40.00." });
  const form = formContext("invoice", ID);
  const outcome = await W365.Common.runButton(form, "w365_ChargeInvoice", { Amount: ["Decimal", 40] });
  assert.deepEqual(outcome, { status: "Succeeded", message: "Charged 40.00." });
  const { request, metadata } = Xrm.executed[0];
  assert.match(request.RequestId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(request.entity, { entityType: "invoice", id: ID });
  assert.equal(request.Amount, 40);
  assert.equal(metadata.operationName, "w365_ChargeInvoice");
  assert.equal(metadata.boundParameter, "entity");
  assert.equal(metadata.operationType, 0);
  assert.deepEqual(metadata.parameterTypes.entity, { typeName: "mscrm.invoice", structuralProperty: 5 });
  assert.equal(metadata.parameterTypes.Amount.typeName, "Edm.Decimal");
  assert.equal(Xrm.polls.length, 3);
  assert.equal(Xrm.polls[0].table, "w365_operation");
  assert.equal(Xrm.polls[0].query, `?$select=w365_status,w365_message&$filter=w365_requestid eq '${request.RequestId}'`);
  assert.deepEqual(Xrm.alerts, [{ title: "Done", text: "Charged 40.00." }]);
  assert.deepEqual(form.refreshed, [false]);
  assert.deepEqual(Xrm.progress.slice(-1), ["closed"]);
});

test("each click gets its own RequestId", async () => {
  global.Xrm = fakeXrm();
  const form = formContext("invoice", ID);
  await W365.Common.runButton(form, "w365_ChargeInvoice", {});
  await W365.Common.runButton(form, "w365_ChargeInvoice", {});
  assert.notEqual(Xrm.executed[0].request.RequestId, Xrm.executed[1].request.RequestId);
});

test("a failed outcome is shown and the form is not refreshed", async () => {
  global.Xrm = fakeXrm({ status: 100000001, message: "Declined." });
  const form = formContext("invoice", ID);
  const outcome = await W365.Common.runButton(form, "w365_ChargeInvoice", {});
  assert.equal(outcome.status, "Failed");
  assert.deepEqual(Xrm.alerts, [{ title: "Not done", text: "Declined." }]);
  assert.deepEqual(form.refreshed, []);
});

test("a claimed row without a status is polled until the outcome is set", async () => {
  global.Xrm = fakeXrm({ claims: true, delayPolls: 3, message: "Approval request emailed." });
  const outcome = await W365.Common.run("w365_SendOrderForApproval", "salesorder", ID, {});
  assert.deepEqual(outcome, { status: "Succeeded", message: "Approval request emailed." });
  assert.equal(Xrm.polls.length, 4);
});

test("a claim that never gets its outcome says it is still processing", async () => {
  global.Xrm = fakeXrm({ claims: true, neverAnswers: true });
  const outcome = await W365.Common.run("w365_SendOrderForApproval", "salesorder", ID, {});
  assert.equal(outcome.status, "Pending");
  assert.equal(Xrm.polls.length, W365.Common.settings.maxPolls);
});

test("no outcome row after the last poll says it is still processing", async () => {
  global.Xrm = fakeXrm({ neverAnswers: true });
  const outcome = await W365.Common.run("w365_SyncPaymentProfile", "w365_paymentprofile", ID, {});
  assert.equal(outcome.status, "Pending");
  assert.equal(Xrm.polls.length, W365.Common.settings.maxPolls);
});

test("an execute error is shown, never thrown", async () => {
  global.Xrm = fakeXrm({ executeFails: "403 Forbidden" });
  const outcome = await W365.Common.run("w365_SyncPaymentProfile", "w365_paymentprofile", ID, {});
  assert.equal(outcome.status, "Failed");
  assert.equal(Xrm.alerts[0].text, "403 Forbidden");
  assert.equal(Xrm.polls.length, 0);
});

test("empty optional parameters are left out and unknown types refused", () => {
  const request = W365.Common.buildRequest("w365_ChargeInvoice", "invoice", ID, "r", { Amount: ["Decimal", null] });
  assert.equal("Amount" in request, false);
  assert.throws(() => W365.Common.buildRequest("m", "invoice", ID, "r", { X: ["Money", 1] }), /Unknown parameter type/);
});

test("Accept.js is loaded once into the dialog's document and tokenizes the card", async () => {
  const appended = [];
  const doc = {
    defaultView: { Accept: { dispatchData(data, handler) {
      assert.equal(data.authData.clientKey, "key");
      handler({ messages: { resultCode: "Ok" }, opaqueData: { dataDescriptor: "COMMON.ACCEPT.INAPP.PAYMENT", dataValue: "nonce" } });
    } } },
    head: { appendChild(node) { appended.push(node); setTimeout(() => node.onload(), 0); } },
    createElement() { return { setAttribute(name, value) { this[name] = value; } }; },
    querySelector() { return appended[0] || null; }
  };
  const accept = await W365.Common.loadAcceptJs(doc, "https://jstest.authorize.net/v1/Accept.js");
  await W365.Common.loadAcceptJs(doc, "https://jstest.authorize.net/v1/Accept.js");
  assert.equal(appended.length, 1);
  assert.equal(appended[0].src, "https://jstest.authorize.net/v1/Accept.js");
  const opaque = await W365.Common.tokenizeCard(accept, { clientKey: "key", apiLoginID: "login" }, { cardNumber: "4111111111111111" });
  assert.deepEqual(opaque, { dataDescriptor: "COMMON.ACCEPT.INAPP.PAYMENT", dataValue: "nonce" });
  const refusing = { dispatchData(data, handler) { handler({ messages: { resultCode: "Error", message: [{ code: "E_WC_05", text: "Please provide valid credit card number." }] } }); } };
  await assert.rejects(W365.Common.tokenizeCard(refusing, {}, {}), /valid credit card number/);
});

test("a request that cannot even be built is shown as an error, closes the progress indicator and never rejects",
     async () => {
  global.Xrm = fakeXrm();
  const outcome = await W365.Common.runButton(formContext("invoice", ID), "w365_ChargeInvoice", { Amount: ["Money", 1] });
  assert.equal(outcome.status, "Failed");
  assert.match(outcome.message, /Unknown parameter type Money/);
  assert.deepEqual(Xrm.alerts.map((a) => a.title), ["Something went wrong"]);
  assert.deepEqual(Xrm.progress.slice(-1), ["closed"]);
  assert.equal(Xrm.executed.length, 0);
});
