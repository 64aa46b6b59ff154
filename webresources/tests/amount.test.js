"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const W365 = require("../w365_/scripts/amount.js");

test("amounts are read as exact cents, with thousands separators or a decimal comma", () => {
  assert.deepEqual(W365.Amount.parse("40"), { cents: 4000, text: "40.00" });
  assert.deepEqual(W365.Amount.parse(" 0.1 "), { cents: 10, text: "0.10" });
  assert.deepEqual(W365.Amount.parse("1,234.56"), { cents: 123456, text: "1234.56" });
  assert.deepEqual(W365.Amount.parse("40,5"), { cents: 4050, text: "40.50" });
  assert.deepEqual(W365.Amount.parse("0.29"), { cents: 29, text: "0.29" });   // 0.29 * 100 is 28.999... as a float
});

test("zero, negative, non-numbers, three decimals and more than the limit are refused", () => {
  assert.match(W365.Amount.parse("0").error, /more than zero/);
  assert.match(W365.Amount.parse("0.00").error, /more than zero/);
  assert.match(W365.Amount.parse("-5").error, /such as/);
  assert.match(W365.Amount.parse("abc").error, /such as/);
  assert.match(W365.Amount.parse("").error, /such as/);
  assert.match(W365.Amount.parse("1e3").error, /such as/);
  assert.match(W365.Amount.parse("10.001").error, /two decimal places/);
  assert.match(W365.Amount.parse("100.01", 10000).error, /more than 100\.00/);
  assert.deepEqual(W365.Amount.parse("100.00", 10000), { cents: 10000, text: "100.00" });
});

test("form money becomes cents without float drift", () => {
  assert.equal(W365.Amount.toCents(1234.56), 123456);
  assert.equal(W365.Amount.toCents(0.29), 29);
  assert.equal(W365.Amount.toCents(null), null);
  assert.equal(W365.Amount.format(5), "0.05");
});

test("asking again after a wrong answer says what was wrong; cancel gives null", async () => {
  const asked = [];
  const answers = ["12.345", "12.34"];
  W365.Amount.settings.ask = (text, previous) => { asked.push({ text, previous }); return Promise.resolve(answers.shift()); };
  assert.deepEqual(await W365.Amount.ask({ text: "How much?", defaultText: "50.00", maxCents: 5000 }),
                   { cents: 1234, text: "12.34" });
  assert.deepEqual(asked[0], { text: "How much?", previous: "50.00" });
  assert.equal(asked[1].previous, "12.345");
  assert.match(asked[1].text, /^Use at most two decimal places\.\n\nHow much\?$/);
  W365.Amount.settings.ask = () => Promise.resolve(null);
  assert.equal(await W365.Amount.ask({ text: "How much?" }), null);
  W365.Amount.settings.ask = () => Promise.resolve("  ");
  assert.deepEqual(await W365.Amount.ask({ text: "How much?", allowEmpty: true }), { empty: true });
});
