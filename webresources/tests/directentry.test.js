"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { fakeXrm } = require("./fake_xrm.js");
const W365 = require("../w365_/scripts/directentry.js");

W365.Common.settings.sleep = () => Promise.resolve();
const ACCOUNT = "11111111-2222-4333-8444-555555555555";
const NANCY = "66666666-7777-4888-9999-000000000001";
const BOB = "66666666-7777-4888-9999-000000000002";
const CARD = "4111111111111111";
const PAGE = fs.readFileSync(path.join(__dirname, "../w365_/pages/directentry.html"), "utf8");

/* The fake Xrm of the other ribbon tests plus the reads the dialog makes (account, contacts, environment variables). */
function dialogXrm(options) {
  const opts = Object.assign({ contacts: [{ contactid: NANCY, fullname: "Nancy Davolio", firstname: "Nancy",
                                            lastname: "Davolio", telephone1: "555-0100" },
                                          { contactid: BOB, fullname: "Bob Brown", firstname: "Bob", lastname: "Brown" }],
                               variables: { w365_AcceptJsClientKey: "client-key", w365_AuthorizeNetLoginId: "login-id" },
                               primary: BOB }, options);
  const xrm = fakeXrm(opts);
  const operations = xrm.WebApi.retrieveMultipleRecords;
  xrm.reads = [];
  xrm.WebApi.retrieveMultipleRecords = (table, query) => {
    if (table === "w365_operation") { return operations(table, query); }
    xrm.reads.push({ table, query });
    if (table === "contact") { return Promise.resolve({ entities: opts.contacts }); }
    if (table === "environmentvariabledefinition") {
      return Promise.resolve({ entities: Object.entries(opts.variables).map(([schemaname, value]) => (
        { schemaname, defaultvalue: "", environmentvariabledefinition_environmentvariablevalue: [{ value }] })) });
    }
    throw new Error("unexpected read of " + table);
  };
  xrm.WebApi.retrieveRecord = (table, id, query) => {
    xrm.reads.push({ table, id, query });
    if (table === "salesorder") { return Promise.resolve(opts.order); }
    return Promise.resolve({ name: "Contoso", _primarycontactid_value: opts.primary, address1_line1: "1 Main St",
                             address1_city: "Springfield", address1_stateorprovince: "IL",
                             address1_postalcode: "62701", address1_country: "US", telephone1: "555-0199" });
  };
  return xrm;
}

/* A document with exactly the elements (ids) of directentry.html, and Accept.js answering with `acceptAnswer`. */
function dialogWindow(search, xrm, acceptAnswer) {
  const elements = {};
  const accepted = [];
  const appended = [];
  function element(tag, id) {
    const attributes = {};
    const listeners = {};
    return { tagName: tag, id, value: "", checked: false, textContent: "", disabled: false, className: "", children: [],
             focused: false, attributes, listeners,
             setAttribute(name, value) { attributes[name] = String(value); },
             removeAttribute(name) { delete attributes[name]; },
             addEventListener(type, handler) { listeners[type] = handler; },
             appendChild(child) { this.children.push(child); },
             focus() { doc.focusedId = id; } };
  }
  for (const match of PAGE.matchAll(/<(\w+)[^>]*\sid="([^"]+)"/g)) { elements[match[2]] = element(match[1], match[2]); }
  const win = { location: { search }, parent: { Xrm: xrm } };
  const doc = {
    defaultView: { Accept: { dispatchData(data, handler) { accepted.push(data); handler(acceptAnswer); } } },
    head: { appendChild(node) { appended.push(node); setTimeout(() => node.onload(), 0); } },
    createElement(tag) { return element(tag, null); },
    querySelector() { return appended[0] || null; },
    getElementById(id) { return elements[id] || null; },
    accepted, appended
  };
  win.document = doc;
  doc.el = elements;
  doc.submit = () => { let prevented = false;
                       elements["direct-entry"].listeners.submit({ preventDefault() { prevented = true; } });
                       return prevented; };
  return win;
}

const OK = { messages: { resultCode: "Ok" }, opaqueData: { dataDescriptor: "COMMON.ACCEPT.INAPP.PAYMENT", dataValue: "nonce-1" } };

async function until(condition) {
  for (let i = 0; i < 200 && !condition(); i += 1) { await new Promise((resolve) => setTimeout(resolve, 1)); }
  assert.ok(condition(), "timed out");
}

function typeCard(doc, card) {
  Object.assign(doc.el.cardNumber, { value: "4111 1111 1111 1111" });
  Object.assign(doc.el.expMonth, { value: "12" });
  Object.assign(doc.el.expYear, { value: "2030" });
  Object.assign(doc.el.cardCode, { value: "123" });
  Object.assign(doc.el, card || {});
}

test("the page data is the account id the Add Payment Profile button passes, or a JSON object", () => {
  assert.deepEqual(W365.DirectEntry.pageData("?data=%7B" + ACCOUNT.toUpperCase() + "%7D&orglcid=1033"), { accountId: ACCOUNT });
  const data = W365.DirectEntry.pageData("?data=" + encodeURIComponent(JSON.stringify(
    { accountId: ACCOUNT, contacts: [{ id: NANCY, name: "Nancy" }], acceptJsUrl: "http://127.0.0.1:7071/Accept.js" })));
  assert.equal(data.accountId, ACCOUNT);
  assert.equal(data.contacts[0].id, NANCY);
  assert.equal(data.acceptJsUrl, "http://127.0.0.1:7071/Accept.js");
});

test("the Accept.js URL follows w365_AuthorizeNetEnvironment, sandbox by default", () => {
  assert.equal(W365.DirectEntry.acceptJsUrl(""), "https://jstest.authorize.net/v1/Accept.js");
  assert.equal(W365.DirectEntry.acceptJsUrl("Production"), "https://js.authorize.net/v1/Accept.js");
  assert.throws(() => W365.DirectEntry.acceptJsUrl("live"), /sandbox or production/);
});

test("setup reads the account's contacts, its address and the Accept.js keys from environment variables", async () => {
  global.Xrm = dialogXrm({ variables: { w365_AcceptJsClientKey: "client-key", w365_AuthorizeNetLoginId: "login-id",
                                        w365_AuthorizeNetEnvironment: "production" } });
  const setup = await W365.DirectEntry.loadSetup({ accountId: ACCOUNT });
  assert.deepEqual(setup.authData, { clientKey: "client-key", apiLoginID: "login-id" });
  assert.equal(setup.acceptJsUrl, "https://js.authorize.net/v1/Accept.js");
  assert.deepEqual(setup.contacts.map((c) => c.id), [NANCY, BOB]);
  assert.equal(setup.primaryContactId, BOB);
  assert.equal(setup.billTo.zip, "62701");
  const contacts = Xrm.reads.find((r) => r.table === "contact");
  assert.match(contacts.query, new RegExp(`_parentcustomerid_value eq ${ACCOUNT} and statecode eq 0`));
  const variables = Xrm.reads.find((r) => r.table === "environmentvariabledefinition");
  assert.match(variables.query, /schemaname eq 'w365_AcceptJsClientKey' or schemaname eq 'w365_AuthorizeNetLoginId'/);
  assert.match(variables.query, /\$expand=environmentvariabledefinition_environmentvariablevalue/);
});

test("what the opener passes is not read again", async () => {
  global.Xrm = dialogXrm();
  const setup = await W365.DirectEntry.loadSetup({ accountId: ACCOUNT, contacts: [{ id: "{" + NANCY + "}", name: "N" }],
                                                  clientKey: "k", apiLoginID: "l",
                                                  acceptJsUrl: "https://js.authorize.net/v1/Accept.js" });
  assert.deepEqual(Xrm.reads.map((r) => r.table), ["account"]);
  assert.equal(setup.contacts[0].id, NANCY);
  assert.equal(setup.acceptJsUrl, "https://js.authorize.net/v1/Accept.js");
});

test("a script address in the dialog's URL is used only when it is Accept.js (or the local stand-in)", async () => {
  // Anyone can send a user a link to this web resource with their own `data`: it must not choose what script runs
  // inside Dynamics 365 next to the card fields.
  global.Xrm = dialogXrm();
  for (const url of ["https://evil.example/Accept.js", "javascript:alert(1)", "https://js.authorize.net.evil.example/v1/Accept.js"]) {
    await assert.rejects(W365.DirectEntry.loadSetup({ accountId: ACCOUNT, clientKey: "k", apiLoginID: "l", acceptJsUrl: url }),
                         /not Authorize\.Net's Accept\.js/);
  }
  const local = await W365.DirectEntry.loadSetup({ accountId: ACCOUNT, acceptJsUrl: "http://127.0.0.1:7071/Accept.js" });
  assert.equal(local.acceptJsUrl, "http://127.0.0.1:7071/Accept.js");
});

test("missing Accept.js keys name the environment variables to set", async () => {
  global.Xrm = dialogXrm({ variables: { w365_AcceptJsClientKey: "k" } });
  await assert.rejects(W365.DirectEntry.loadSetup({ accountId: ACCOUNT }), /w365_AcceptJsClientKey and w365_AuthorizeNetLoginId/);
  await assert.rejects(W365.DirectEntry.loadSetup({ accountId: "" }), /saved account/);
});

test("validation: required fields, card number, expiry in the future, security code", () => {
  const values = { contactId: "", setAsDefault: false,
                   billTo: { firstName: "", lastName: "L", company: "", address: "A", city: "C", state: "", zip: "Z",
                             country: "" },
                   cardData: { cardNumber: "4111", month: "13", year: "2030", cardCode: "12" } };
  const problems = W365.DirectEntry.validate(values, new Date(2026, 4, 15));
  assert.deepEqual(Object.keys(problems).sort(),
                   ["cardCode", "cardNumber", "contact", "country", "expMonth", "firstName"].sort());
  const expired = { contactId: NANCY, setAsDefault: false,
                    billTo: { firstName: "F", lastName: "L", address: "A", city: "C", zip: "Z", country: "US" },
                    cardData: { cardNumber: CARD, month: "04", year: "26", cardCode: "123" } };
  assert.deepEqual(W365.DirectEntry.validate(expired, new Date(2026, 4, 15)), { expYear: "This card has expired." });
  expired.cardData.month = "5";
  assert.deepEqual(W365.DirectEntry.validate(expired, new Date(2026, 4, 15)), {});
});

test("the dialog tokenizes the card with Accept.js and sends only the nonce, through the parent's Xrm", async () => {
  delete global.Xrm;
  const xrm = dialogXrm({ message: "The card was added; it becomes usable after Sync." });
  const win = dialogWindow("?data=" + ACCOUNT, xrm, OK);
  const doc = win.document;
  assert.ok(await W365.DirectEntry.init(win));
  assert.equal(global.Xrm, xrm);
  assert.deepEqual(doc.el.contact.children.map((o) => [o.value, o.textContent]),
                   [[NANCY, "Nancy Davolio"], [BOB, "Bob Brown"]]);
  assert.equal(doc.el.contact.value, BOB);                  // the account's primary contact
  assert.equal(doc.el.firstName.value, "Bob");
  assert.equal(doc.el.company.value, "Contoso");
  assert.equal(doc.el.city.value, "Springfield");
  assert.equal(doc.el.submit.disabled, false);
  doc.el.contact.value = NANCY;
  doc.el.firstName.value = "";
  doc.el.contact.listeners.change();
  assert.equal(doc.el.firstName.value, "Nancy");             // refilled where empty
  assert.equal(doc.el.lastName.value, "Brown");             // typed (here: prefilled) values are kept
  doc.el.lastName.value = "Davolio";
  doc.el.setAsDefault.checked = true;
  typeCard(doc);

  assert.equal(doc.submit(), true);                         // the form itself is never posted
  assert.equal(doc.el.submit.disabled, true);
  await until(() => doc.el["form-status"].textContent);

  assert.equal(doc.appended[0].src, "https://jstest.authorize.net/v1/Accept.js");
  assert.deepEqual(doc.accepted[0], { authData: { clientKey: "client-key", apiLoginID: "login-id" },
                                      cardData: { cardNumber: CARD, month: "12", year: "2030", cardCode: "123" } });
  const { request, metadata } = xrm.executed[0];
  assert.equal(metadata.operationName, "w365_AddPaymentProfile");
  assert.deepEqual(request.entity, { entityType: "account", id: ACCOUNT });
  assert.equal(request.Method, "DirectEntry");
  assert.equal(request.ContactId, NANCY);
  assert.equal(request.OpaqueDataDescriptor, "COMMON.ACCEPT.INAPP.PAYMENT");
  assert.equal(request.OpaqueDataValue, "nonce-1");
  assert.equal(request.SetAsDefault, true);
  assert.deepEqual(JSON.parse(request.BillTo), { firstName: "Nancy", lastName: "Davolio", company: "Contoso",
    address: "1 Main St", city: "Springfield", state: "IL", zip: "62701", country: "US", phoneNumber: "555-0199" });   // kept from the first prefill
  const sent = JSON.stringify(request);
  assert.equal(sent.includes(CARD) || sent.includes("2030") || sent.includes('"123"'), false);

  assert.equal(doc.el["form-status"].textContent, "The card was added; it becomes usable after Sync.");
  assert.equal(doc.el["form-status"].className, "status ok");
  assert.deepEqual(["cardNumber", "expMonth", "expYear", "cardCode"].map((id) => doc.el[id].value), ["", "", "", ""]);
  assert.equal(doc.el.submit.disabled, true);               // one card per opening
  assert.equal(xrm.alerts[0].text, "The card was added; it becomes usable after Sync.");
});

test("invalid fields are marked and nothing reaches Accept.js or Dataverse", async () => {
  delete global.Xrm;
  const xrm = dialogXrm();
  const win = dialogWindow("?data=" + ACCOUNT, xrm, OK);
  const doc = win.document;
  await W365.DirectEntry.init(win);
  doc.el.zip.value = "";
  typeCard(doc);
  doc.el.cardNumber.value = "4111";
  doc.submit();
  assert.equal(doc.el.cardNumber.attributes["aria-invalid"], "true");
  assert.equal(doc.el["cardNumber-error"].textContent, "Enter the card number (13 to 19 digits).");
  assert.equal(doc.el["zip-error"].textContent, "Enter the ZIP or postal code.");
  assert.equal(doc.el["form-errors"].textContent, "Please correct 2 fields below.");
  assert.equal(doc.focusedId, "cardNumber");
  assert.equal(doc.appended.length, 0);
  assert.equal(xrm.executed.length, 0);
  typeCard(doc);
  doc.el.zip.value = "62701";
  doc.submit();
  assert.equal(doc.el.cardNumber.attributes["aria-invalid"], undefined);
  assert.equal(doc.el["form-errors"].textContent, "");
  await until(() => xrm.executed.length === 1);
});

test("a card Accept.js refuses is shown in the dialog and can be corrected", async () => {
  delete global.Xrm;
  const xrm = dialogXrm();
  const refused = { messages: { resultCode: "Error", message: [{ code: "E_WC_05", text: "Please provide valid credit card number." }] } };
  const win = dialogWindow("?data=" + ACCOUNT, xrm, refused);
  const doc = win.document;
  await W365.DirectEntry.init(win);
  typeCard(doc);
  doc.submit();
  await until(() => doc.el["form-status"].textContent);
  assert.equal(doc.el["form-status"].textContent, "Please provide valid credit card number.");
  assert.equal(doc.el["form-status"].className, "status failed");
  assert.equal(xrm.executed.length, 0);
  assert.equal(doc.el.cardCode.value, "");
  assert.equal(doc.el.cardNumber.value, "4111 1111 1111 1111");
  assert.equal(doc.el.submit.disabled, false);
});

test("an account without contacts, or missing keys, leaves the dialog disabled with the reason", async () => {
  delete global.Xrm;
  let win = dialogWindow("?data=" + ACCOUNT, dialogXrm({ contacts: [] }), OK);
  assert.equal(await W365.DirectEntry.init(win), null);
  assert.match(win.document.el["form-status"].textContent, /no active contact/);
  assert.equal(win.document.el.submit.disabled, true);
  delete global.Xrm;
  win = dialogWindow("?data=" + ACCOUNT, dialogXrm({ variables: {} }), OK);
  await W365.DirectEntry.init(win);
  assert.match(win.document.el["form-status"].textContent, /w365_AcceptJsClientKey/);
  assert.equal(win.document.el.submit.disabled, true);
  win.document.submit();
  assert.equal(win.document.appended.length, 0);
});

const ORDER = "88888888-9999-4aaa-8bbb-cccccccccccc";
const ORDER_ROW = { name: "ORD-01001", totalamount: 237.6, "totalamount@OData.Community.Display.V1.FormattedValue": "$237.60",
                    billto_name: "Contoso", billto_line1: "1 Main St", billto_city: "Springfield",
                    billto_stateorprovince: "IL", billto_postalcode: "62701", billto_country: "US" };
const ORDER_PAGE = "?data=" + encodeURIComponent(JSON.stringify({ mode: "order", orderId: "{" + ORDER.toUpperCase() + "}" }));

test("order mode: a saved order is required and the card script must still be Accept.js", async () => {
  assert.deepEqual(W365.DirectEntry.pageData(ORDER_PAGE), { mode: "order", orderId: ORDER });
  global.Xrm = dialogXrm({ order: ORDER_ROW });
  await assert.rejects(W365.DirectEntry.loadSetup({ mode: "order", orderId: "" }), /saved order/);
  await assert.rejects(W365.DirectEntry.loadSetup({ mode: "order", orderId: ORDER, clientKey: "k", apiLoginID: "l",
                                                    acceptJsUrl: "https://evil.example/Accept.js" }),
                       /not Authorize\.Net's Accept\.js/);
});

test("order mode: shows the order's total, no contact or default, and submits the order payment with the nonce only", async () => {
  delete global.Xrm;
  const xrm = dialogXrm({ order: ORDER_ROW, message: "Charge of $237.60 approved." });
  const win = dialogWindow(ORDER_PAGE, xrm, OK);
  const doc = win.document;
  assert.ok(await W365.DirectEntry.init(win));
  assert.deepEqual(xrm.reads.map((r) => r.table).sort(), ["environmentvariabledefinition", "salesorder"]);
  assert.equal(xrm.reads.find((r) => r.table === "salesorder").id, ORDER);
  assert.equal(doc.el["contact-section"].hidden, true);
  assert.equal(doc.el["options-section"].hidden, true);
  assert.equal(doc.el["order-total"].hidden, false);
  assert.equal(doc.el["order-total"].textContent, "Total to charge: $237.60 (order ORD-01001)");
  assert.equal(doc.el.submit.textContent, "Submit payment");
  assert.equal(doc.el.address.value, "1 Main St");         // prefilled from the order's bill-to address
  doc.el.firstName.value = "Nancy";
  doc.el.lastName.value = "Davolio";
  typeCard(doc);

  assert.equal(doc.submit(), true);
  await until(() => doc.el["form-status"].textContent);

  assert.equal(doc.appended[0].src, "https://jstest.authorize.net/v1/Accept.js");
  assert.equal(doc.accepted[0].cardData.cardNumber, CARD);
  assert.equal(xrm.executed.length, 1);
  const { request, metadata } = xrm.executed[0];
  assert.equal(metadata.operationName, "w365_SubmitOrderPayment");
  assert.deepEqual(request.entity, { entityType: "salesorder", id: ORDER });
  assert.equal(request.OpaqueDataDescriptor, "COMMON.ACCEPT.INAPP.PAYMENT");
  assert.equal(request.OpaqueDataValue, "nonce-1");
  assert.equal(metadata.parameterTypes.BillTo.typeName, "Edm.String");
  assert.deepEqual(JSON.parse(request.BillTo), { firstName: "Nancy", lastName: "Davolio", company: "Contoso",
    address: "1 Main St", city: "Springfield", state: "IL", zip: "62701", country: "US", phoneNumber: "" });
  for (const absent of ["ContactId", "SetAsDefault", "Method", "PaymentProfileId"]) {
    assert.equal(request[absent], undefined, absent);
  }
  const sent = JSON.stringify(request);
  assert.equal(sent.includes(CARD) || sent.includes("2030") || sent.includes('"123"'), false);

  assert.equal(doc.el["form-status"].textContent, "Charge of $237.60 approved.");
  assert.equal(doc.el["form-status"].className, "status ok");
  assert.deepEqual(["cardNumber", "expMonth", "expYear", "cardCode"].map((id) => doc.el[id].value), ["", "", "", ""]);
  assert.equal(doc.el.submit.disabled, true);
  assert.equal(doc.el.submit.textContent, "Payment submitted");
});

test("order mode: a decline can be retried with the card again, a payment still pending cannot", async () => {
  delete global.Xrm;
  let xrm = dialogXrm({ order: ORDER_ROW, status: 100000001, message: "The card was declined." });
  let win = dialogWindow(ORDER_PAGE, xrm, OK);
  await W365.DirectEntry.init(win);
  Object.assign(win.document.el.firstName, { value: "N" });
  Object.assign(win.document.el.lastName, { value: "D" });
  typeCard(win.document);
  win.document.submit();
  await until(() => win.document.el["form-status"].textContent);
  assert.equal(win.document.el["form-status"].className, "status failed");
  assert.equal(win.document.el.cardCode.value, "");
  assert.equal(win.document.el.submit.disabled, false);
  assert.equal(win.document.el.submit.textContent, "Submit payment");

  delete global.Xrm;
  xrm = dialogXrm({ order: ORDER_ROW, neverAnswers: true });
  win = dialogWindow(ORDER_PAGE, xrm, OK);
  await W365.DirectEntry.init(win);
  Object.assign(win.document.el.firstName, { value: "N" });
  Object.assign(win.document.el.lastName, { value: "D" });
  typeCard(win.document);
  win.document.submit();
  await until(() => win.document.el["form-status"].textContent);
  assert.match(win.document.el["form-status"].textContent, /still being processed/);
  assert.equal(win.document.el.submit.disabled, true);
  assert.equal(win.document.el.cardNumber.value, "");
});
