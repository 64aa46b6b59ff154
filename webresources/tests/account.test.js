"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { fakeXrm, formContext } = require("./fake_xrm.js");
const W365 = require("../w365_/scripts/account.js");

W365.Common.settings.sleep = () => Promise.resolve();
const ACCOUNT = "11111111-2222-4333-8444-555555555555";
const CONTACT = "66666666-7777-4888-9999-000000000000";

function accountForm() {
  return formContext("account", ACCOUNT, { primarycontactid: [{ id: "{" + CONTACT.toUpperCase() + "}" }] });
}

test("sync all calls w365_SyncPaymentProfiles on the account", async () => {
  global.Xrm = fakeXrm({ message: "1 imported" });
  await W365.Account.syncAll(accountForm());
  assert.equal(Xrm.executed[0].metadata.operationName, "w365_SyncPaymentProfiles");
  assert.equal(Xrm.alerts[0].text, "1 imported");
});

test("a profile request sends the template and the primary contact", async () => {
  global.Xrm = fakeXrm();
  await W365.Account.sendProfileRequest(accountForm(), null, "Your card", "Please: {Secure Link}");
  const { request, metadata } = Xrm.executed[0];
  assert.equal(request.Method, "ProfileRequest");
  assert.equal(request.ContactId, CONTACT);
  assert.equal(metadata.parameterTypes.ContactId.typeName, "Edm.Guid");
  assert.equal(request.EmailBody, "Please: {Secure Link}");
});

test("direct entry loads Accept.js, sends only the nonce, never the card", async () => {
  global.Xrm = fakeXrm({ message: "The card was added." });
  const appended = [];
  const doc = {
    defaultView: { Accept: { dispatchData(data, handler) {
      handler({ messages: { resultCode: "Ok" }, opaqueData: { dataDescriptor: "COMMON.ACCEPT.INAPP.PAYMENT", dataValue: "nonce-1" } });
    } } },
    head: { appendChild(node) { appended.push(node); setTimeout(() => node.onload(), 0); } },
    createElement() { return { setAttribute() {} }; },
    querySelector() { return null; }
  };
  const outcome = await W365.Account.directEntry(accountForm(), doc, {
    acceptJsUrl: "https://jstest.authorize.net/v1/Accept.js", authData: { clientKey: "k", apiLoginID: "l" },
    cardData: { cardNumber: "4111111111111111", month: "12", year: "2030", cardCode: "123" },
    billTo: { firstName: "Nancy", zip: "62701" }, setAsDefault: true
  });
  assert.equal(outcome.status, "Succeeded");
  assert.equal(appended[0].src, "https://jstest.authorize.net/v1/Accept.js");
  const { request, metadata } = Xrm.executed[0];
  assert.equal(request.Method, "DirectEntry");
  assert.equal(request.OpaqueDataValue, "nonce-1");
  assert.equal(request.SetAsDefault, true);
  assert.equal(metadata.parameterTypes.SetAsDefault.typeName, "Edm.Boolean");
  assert.equal(JSON.stringify(request).includes("4111111111111111"), false);
});

test("a card Accept.js refuses is shown and nothing is sent", async () => {
  global.Xrm = fakeXrm();
  const doc = {
    defaultView: { Accept: { dispatchData(data, handler) {
      handler({ messages: { resultCode: "Error", message: [{ code: "E_WC_05", text: "Please provide valid credit card number." }] } });
    } } },
    head: { appendChild(node) { setTimeout(() => node.onload(), 0); } },
    createElement() { return { setAttribute() {} }; },
    querySelector() { return null; }
  };
  const outcome = await W365.Account.directEntry(accountForm(), doc, { acceptJsUrl: "u", authData: {}, cardData: {} });
  assert.equal(outcome.status, "Failed");
  assert.equal(Xrm.executed.length, 0);
  assert.match(Xrm.alerts[0].text, /valid credit card number/);
});

test("the Add Payment Profile button opens the Direct Entry dialog for the account", async () => {
  global.Xrm = fakeXrm();
  const form = accountForm();
  await W365.Account.openAddPaymentProfile(form);
  assert.equal(Xrm.navigations[0].page.webresourceName, "w365_/pages/directentry.html");
  assert.equal(Xrm.navigations[0].page.data, ACCOUNT);
  assert.equal(Xrm.navigations[0].options.target, 2);
});
