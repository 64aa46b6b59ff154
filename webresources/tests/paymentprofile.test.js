"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { fakeXrm, formContext } = require("./fake_xrm.js");
const W365 = require("../w365_/scripts/paymentprofile.js");

W365.Common.settings.sleep = () => Promise.resolve();
const ID = "9d8c7b6a-0000-4000-8000-000000000001";

for (const [button, message] of [["sync", "w365_SyncPaymentProfile"], ["setDefault", "w365_SetDefaultPaymentProfile"]]) {
  test(`${button} calls ${message} on the profile`, async () => {
    global.Xrm = fakeXrm({ message: "ok" });
    await W365.PaymentProfile[button](formContext("w365_paymentprofile", ID));
    assert.equal(Xrm.executed[0].metadata.operationName, message);
    assert.deepEqual(Xrm.executed[0].request.entity, { entityType: "w365_paymentprofile", id: ID });
    assert.equal(Xrm.alerts[0].text, "ok");
  });
}

test("deactivate asks first and does nothing when the user cancels", async () => {
  global.Xrm = fakeXrm({ confirm: false });
  const outcome = await W365.PaymentProfile.deactivate(formContext("w365_paymentprofile", ID));
  assert.equal(outcome.status, "Cancelled");
  assert.equal(Xrm.executed.length, 0);
  global.Xrm = fakeXrm({ confirm: true, message: "Deactivated." });
  await W365.PaymentProfile.deactivate(formContext("w365_paymentprofile", ID));
  assert.equal(Xrm.executed[0].metadata.operationName, "w365_DeactivatePaymentProfile");
  assert.equal(Xrm.alerts[0].text, "Deactivated.");
});

test("update sends the form's bill-to as JSON, and a new card only when given", async () => {
  global.Xrm = fakeXrm();
  const form = formContext("w365_paymentprofile", ID, { w365_billto_city: "Springfield", w365_billto_zip: "62701" });
  await W365.PaymentProfile.updateFromForm(form);
  const first = Xrm.executed[0].request;
  assert.equal(Xrm.executed[0].metadata.operationName, "w365_UpdatePaymentProfile");
  assert.equal(JSON.parse(first.BillTo).city, "Springfield");
  assert.equal(JSON.parse(first.BillTo).zip, "62701");
  assert.equal("OpaqueDataValue" in first, false);
  await W365.PaymentProfile.update(form, { city: "X" }, { dataDescriptor: "COMMON.ACCEPT.INAPP.PAYMENT", dataValue: "n" });
  assert.equal(Xrm.executed[1].request.OpaqueDataValue, "n");
  assert.equal(Xrm.executed[1].metadata.parameterTypes.OpaqueDataValue.typeName, "Edm.String");
});
