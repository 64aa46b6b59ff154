"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { fakeXrm, formContext } = require("./fake_xrm.js");
const W365 = require("../w365_/scripts/salesorder.js");
require("../w365_/scripts/directentry.js");               // the page the Pay with New Card button opens

W365.Common.settings.sleep = () => Promise.resolve();
const ORDER = "11111111-2222-4333-8444-555555555555";
const CARD = "66666666-7777-4888-9999-000000000000";
const CONTACT = "77777777-8888-4999-8aaa-bbbbbbbbbbbb";

function orderForm(attributes) {
  return formContext("salesorder", ORDER, Object.assign({ totalamount: 237.6 }, attributes || {}));
}

test("submit order payment charges the card chosen on the order and refreshes the form", async () => {
  global.Xrm = fakeXrm({ message: "Charge of $237.60 approved." });
  const form = orderForm({ w365_paymentprofileid: [{ id: "{" + CARD.toUpperCase() + "}", name: "Visa XXXX1111" }] });
  const outcome = await W365.SalesOrder.submitOrderPayment(form);
  assert.equal(outcome.status, "Succeeded");
  assert.match(Xrm.confirms[0].text, /237\.60 to Visa XXXX1111/);
  const { request, metadata } = Xrm.executed[0];
  assert.equal(metadata.operationName, "w365_SubmitOrderPayment");
  assert.equal(request.entity.id, ORDER);
  assert.equal(request.PaymentProfileId, CARD);
  assert.equal(metadata.parameterTypes.PaymentProfileId.typeName, "Edm.Guid");
  assert.equal(Xrm.alerts[0].text, "Charge of $237.60 approved.");
  assert.deepEqual(form.refreshed, [false]);
});

test("without a card on the order nothing is sent", async () => {
  global.Xrm = fakeXrm();
  const outcome = await W365.SalesOrder.submitOrderPayment(orderForm());
  assert.equal(outcome.status, "Failed");
  assert.equal(Xrm.executed.length, 0);
  assert.match(Xrm.alerts[0].text, /Choose a card/);
});

test("a declined payment is shown and the form is not refreshed as a success", async () => {
  global.Xrm = fakeXrm({ status: 100000001, message: "The card was declined." });
  const form = orderForm({ w365_paymentprofileid: [{ id: CARD, name: "Visa" }] });
  const outcome = await W365.SalesOrder.submitOrderPayment(form);
  assert.equal(outcome.status, "Failed");
  assert.equal(Xrm.alerts[0].text, "The card was declined.");
  assert.deepEqual(form.refreshed, []);
});

test("a new card is tokenized by Accept.js and only the nonce and bill-to are sent", async () => {
  global.Xrm = fakeXrm();
  const doc = {
    defaultView: { Accept: { dispatchData(data, handler) {
      handler({ messages: { resultCode: "Ok" }, opaqueData: { dataDescriptor: "COMMON.ACCEPT.INAPP.PAYMENT", dataValue: "nonce-7" } });
    } } },
    head: { appendChild(node) { setTimeout(() => node.onload(), 0); } },
    createElement() { return { setAttribute() {} }; },
    querySelector() { return null; }
  };
  await W365.SalesOrder.submitWithNewCard(orderForm(), doc, {
    acceptJsUrl: "https://jstest.authorize.net/v1/Accept.js", authData: { clientKey: "k", apiLoginID: "l" },
    cardData: { cardNumber: "4111111111111111", month: "12", year: "2030", cardCode: "123" },
    billTo: { firstName: "Nancy", zip: "98052" }
  });
  const { request } = Xrm.executed[0];
  assert.equal(request.OpaqueDataValue, "nonce-7");
  assert.deepEqual(JSON.parse(request.BillTo), { firstName: "Nancy", zip: "98052" });
  assert.equal(request.PaymentProfileId, undefined);
  assert.equal(JSON.stringify(request).includes("4111111111111111"), false);
});

test("Pay with New Card opens the Direct Entry dialog in order mode for this order, then refreshes the form", async () => {
  global.Xrm = fakeXrm();
  const form = orderForm();
  await W365.SalesOrder.openPayWithNewCard(form);
  const { page, options } = Xrm.navigations[0];
  assert.equal(page.pageType, "webresource");
  assert.equal(page.webresourceName, "w365_/pages/directentry.html");
  assert.deepEqual(JSON.parse(page.data), { mode: "order", orderId: ORDER });
  assert.deepEqual(W365.DirectEntry.pageData("?data=" + encodeURIComponent(page.data)), { mode: "order", orderId: ORDER });
  assert.equal(options.target, 2);
  assert.deepEqual(form.refreshed, [false]);
  assert.equal(Xrm.executed.length, 0);                   // the dialog sends the payment, not the opener
});

test("Pay with New Card on an unsaved order asks to save it first", async () => {
  global.Xrm = fakeXrm();
  const form = formContext("salesorder", "", {});
  const outcome = await W365.SalesOrder.openPayWithNewCard(form);
  assert.equal(outcome.status, "Failed");
  assert.equal(Xrm.navigations.length, 0);
  assert.match(Xrm.alerts[0].text, /Save the order/);
});

test("send for approval lets the user pick the contact and sends the template", async () => {
  global.Xrm = fakeXrm({ message: "Approval request emailed." });
  Xrm.Utility.lookupObjects = () => Promise.resolve([{ id: "{" + CONTACT.toUpperCase() + "}", entityType: "contact" }]);
  await W365.SalesOrder.sendForApproval(orderForm());
  const { request, metadata } = Xrm.executed[0];
  assert.equal(metadata.operationName, "w365_SendOrderForApproval");
  assert.equal(request.ContactId, CONTACT);
  assert.ok(request.EmailBody.includes("{Approval Link}"));
  assert.equal(metadata.parameterTypes.EmailBody.typeName, "Edm.String");
});

test("a template without {Approval Link} is refused before sending", async () => {
  global.Xrm = fakeXrm();
  const outcome = await W365.SalesOrder.sendForApproval(orderForm(), CONTACT, "Order", "Please approve: {Secure Link}");
  assert.equal(outcome.status, "Failed");
  assert.equal(Xrm.executed.length, 0);
});

test("convert to draft asks first and is enabled only for declined or pending orders", async () => {
  const declined = () => orderForm({ w365_orderstatus: 100000002 });
  global.Xrm = fakeXrm({ confirm: false });
  assert.equal((await W365.SalesOrder.convertToDraft(declined())).status, "Cancelled");
  assert.equal(Xrm.executed.length, 0);
  global.Xrm = fakeXrm();
  await W365.SalesOrder.convertToDraft(declined());
  assert.equal(Xrm.executed[0].metadata.operationName, "w365_ConvertOrderToDraft");
  assert.equal(W365.SalesOrder.canConvertToDraft(orderForm({ w365_orderstatus: 100000002 })), true);
  assert.equal(W365.SalesOrder.canConvertToDraft(orderForm({ w365_orderstatus: 100000003 })), false);
});

test("the always-shown command refuses an order that is neither declined nor pending, with a message", async () => {
  global.Xrm = fakeXrm();
  const outcome = await W365.SalesOrder.convertToDraft(orderForm({ w365_orderstatus: 100000003 }));
  assert.equal(outcome.status, "Cancelled");
  assert.equal(Xrm.executed.length, 0);
  assert.match(Xrm.alerts[0].text, /declined order or one waiting for approval/);
});
