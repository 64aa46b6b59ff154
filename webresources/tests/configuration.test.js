"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { fakeXrm, formContext } = require("./fake_xrm.js");
const W365 = require("../w365_/scripts/configuration.js");

W365.Common.settings.sleep = () => Promise.resolve();
const ID = "1a2b3c4d-0000-4000-8000-000000000001";

test("run billing asks first, then calls w365_RunBilling on the configuration without As Of", async () => {
  global.Xrm = fakeXrm({ confirm: false });
  const cancelled = await W365.Configuration.runBilling(formContext("w365_configuration", ID));
  assert.equal(cancelled.status, "Cancelled");
  assert.equal(Xrm.executed.length, 0);
  global.Xrm = fakeXrm({ message: "Billing run 2026-11-30 #1 started." });
  await W365.Configuration.runBilling(formContext("w365_configuration", ID));
  const { request, metadata } = Xrm.executed[0];
  assert.equal(metadata.operationName, "w365_RunBilling");
  assert.deepEqual(request.entity, { entityType: "w365_configuration", id: ID });
  assert.equal("AsOf" in request, false);
  assert.match(Xrm.confirms[0].text, /due by today/);
  assert.equal(Xrm.alerts[0].text, "Billing run 2026-11-30 #1 started.");
});

test("an As Of date travels as an Edm.DateTimeOffset", async () => {
  global.Xrm = fakeXrm();
  await W365.Configuration.runBilling(formContext("w365_configuration", ID), new Date(Date.UTC(2026, 10, 20, 12)));
  const { request, metadata } = Xrm.executed[0];
  assert.equal(request.AsOf, "2026-11-20T12:00:00.000Z");
  assert.equal(metadata.parameterTypes.AsOf.typeName, "Edm.DateTimeOffset");
  assert.match(Xrm.confirms[0].text, /due by 2026-11-20/);
});
