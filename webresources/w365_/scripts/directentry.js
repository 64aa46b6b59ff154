/* The Direct Entry dialog (w365_/pages/directentry.html), opened by W365.Account.openAddPaymentProfile with
   Xrm.Navigation.navigateTo; the page's `data` query parameter is the account id, or a JSON object
   {accountId, contacts: [{id, name}], clientKey, apiLoginID, acceptJsUrl} (what is missing is read here).
   Order mode (W365.SalesOrder.openPayWithNewCard): `data` is {mode: "order", orderId}; the page shows the order's
   total and the card + bill-to form (no contact, no default option) and sends w365_SubmitOrderPayment instead.

   Accept.js authData (both values are public: they are in every customer card page) comes from the Dataverse
   environment variables w365_AcceptJsClientKey and w365_AuthorizeNetLoginId, and the Accept.js URL from
   w365_AuthorizeNetEnvironment (sandbox, the default, or production), read through the parent window's Xrm.
   The card inputs have no name and are read only to hand them to Accept.js (W365.Account.directEntry); only the
   nonce and the bill-to reach Dataverse. Needs w365_/scripts/common.js, account.js and salesorder.js. */
var W365 = W365 || (typeof require !== "undefined" ? (require("./salesorder.js"), require("./account.js")) : {});
W365.DirectEntry = (function () {
  "use strict";

  var ACCEPT_JS = { sandbox: "https://jstest.authorize.net/v1/Accept.js",
                    production: "https://js.authorize.net/v1/Accept.js" };
  var VARIABLES = { clientKey: "w365_AcceptJsClientKey", apiLoginID: "w365_AuthorizeNetLoginId",
                    environment: "w365_AuthorizeNetEnvironment" };
  var BILL_TO = ["firstName", "lastName", "company", "address", "city", "state", "zip", "country", "phoneNumber"];
  var REQUIRED = { contact: "Choose the contact the card belongs to.", firstName: "Enter the first name.",
                   lastName: "Enter the last name.", address: "Enter the address.", city: "Enter the city.",
                   zip: "Enter the ZIP or postal code.", country: "Enter the country." };
  var CARD = ["cardNumber", "expMonth", "expYear", "cardCode"];
  var FIELDS = ["contact"].concat(CARD, BILL_TO);
  var GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  var WORDS = { account: { idle: "Add card", busy: "Saving\u2026", done: "Card added" },
                order: { idle: "Submit payment", busy: "Charging\u2026", done: "Payment submitted" } };

  /* location.search -> {accountId, contacts, clientKey, apiLoginID, acceptJsUrl} as far as the opener gave them,
     or {mode: "order", orderId}. */
  function pageData(search) {
    var raw = (new URLSearchParams(search || "").get("data") || "").trim();
    var braced = /^\{[0-9a-f-]{36}\}$/i.test(raw);           // a GUID as Xrm writes it is not JSON
    var data = raw.charAt(0) === "{" && !braced ? JSON.parse(raw) : { accountId: raw };
    if (data.mode === "order") { data.orderId = W365.Common.cleanId(data.orderId); }
    else { data.accountId = W365.Common.cleanId(data.accountId); }
    return data;
  }

  function acceptJsUrl(environment) {
    var url = ACCEPT_JS[String(environment || "sandbox").trim().toLowerCase()];
    if (!url) { throw new Error(VARIABLES.environment + " must be sandbox or production."); }
    return url;
  }

  /* Current value (else default value) of our environment variables, by schema name. */
  function readVariables() {
    var names = Object.keys(VARIABLES).map(function (key) { return VARIABLES[key]; });
    var query = "?$select=schemaname,defaultvalue&$filter=" +
                names.map(function (n) { return "schemaname eq '" + n + "'"; }).join(" or ") +
                "&$expand=environmentvariabledefinition_environmentvariablevalue($select=value)";
    return Xrm.WebApi.retrieveMultipleRecords("environmentvariabledefinition", query).then(function (result) {
      var values = {};
      (result.entities || []).forEach(function (row) {
        var current = (row.environmentvariabledefinition_environmentvariablevalue || [])[0];
        values[row.schemaname] = (current && current.value) || row.defaultvalue || "";
      });
      return values;
    });
  }

  /* `data` comes from the page's URL, which anyone can write into a link: it may name only Authorize.Net's Accept.js
     or the local dev host's stand-in, never another script to run inside Dynamics 365 next to the card fields. */
  function trustedAcceptJs(url) {
    return Object.keys(ACCEPT_JS).some(function (key) { return ACCEPT_JS[key] === url; }) ||
           /^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(url);
  }

  /* Everything the form needs besides what the person types. Rejects with a message naming a missing setting. */
  function loadSetup(data) {
    var order = data.mode === "order";
    if (!GUID.test(order ? data.orderId : data.accountId)) {
      return Promise.reject(new Error("Open this dialog from a saved " + (order ? "order." : "account.")));
    }
    if (data.acceptJsUrl && !trustedAcceptJs(data.acceptJsUrl)) {
      return Promise.reject(new Error("The card script address given to this dialog is not Authorize.Net's Accept.js."));
    }
    var record = order ? loadOrder(data.orderId) : loadAccount(data);
    var configured = data.clientKey && data.apiLoginID && data.acceptJsUrl;
    var variables = configured ? Promise.resolve({}) : readVariables();
    return Promise.all([record, variables]).then(function (found) {
      var values = found[1];
      var authData = { clientKey: data.clientKey || values[VARIABLES.clientKey],
                       apiLoginID: data.apiLoginID || values[VARIABLES.apiLoginID] };
      if (!authData.clientKey || !authData.apiLoginID) {
        throw new Error("Card entry is not set up: ask an administrator to set the environment variables " +
                        VARIABLES.clientKey + " and " + VARIABLES.apiLoginID + ".");
      }
      return Object.assign(found[0], {
        authData: authData, acceptJsUrl: data.acceptJsUrl || acceptJsUrl(values[VARIABLES.environment])
      });
    });
  }

  /* Order mode: the total is read from the saved order (never from the URL) and the bill-to from its address. */
  function loadOrder(id) {
    return Xrm.WebApi.retrieveRecord("salesorder", id, "?$select=name,totalamount,billto_name,billto_line1," +
      "billto_city,billto_stateorprovince,billto_postalcode,billto_country,billto_telephone").then(function (row) {
      var total = row["totalamount@OData.Community.Display.V1.FormattedValue"] ||
                  (row.totalamount === null || row.totalamount === undefined ? "" : Number(row.totalamount).toFixed(2));
      return { orderId: id, orderName: row.name || "", total: total, contacts: [],
               billTo: { company: row.billto_name, address: row.billto_line1, city: row.billto_city,
                         state: row.billto_stateorprovince, zip: row.billto_postalcode, country: row.billto_country,
                         phoneNumber: row.billto_telephone } };
    });
  }

  function loadAccount(data) {
    var id = data.accountId;
    var account = Xrm.WebApi.retrieveRecord("account", id, "?$select=name,_primarycontactid_value,address1_line1," +
      "address1_city,address1_stateorprovince,address1_postalcode,address1_country,telephone1");
    var contacts = data.contacts ? Promise.resolve(data.contacts) : Xrm.WebApi.retrieveMultipleRecords("contact",
      "?$select=fullname,firstname,lastname,telephone1&$filter=_parentcustomerid_value eq " + id +
      " and statecode eq 0&$orderby=fullname").then(function (result) {
      return result.entities.map(function (c) {
        return { id: c.contactid, name: c.fullname, firstName: c.firstname, lastName: c.lastname, phone: c.telephone1 };
      });
    });
    return Promise.all([account, contacts]).then(function (found) {
      var row = found[0];
      return {
        accountId: id, primaryContactId: W365.Common.cleanId(row._primarycontactid_value) || null,
        contacts: found[1].map(function (c) { return Object.assign({}, c, { id: W365.Common.cleanId(c.id) }); }),
        billTo: { company: row.name, address: row.address1_line1, city: row.address1_city,
                  state: row.address1_stateorprovince, zip: row.address1_postalcode, country: row.address1_country,
                  phoneNumber: row.telephone1 }
      };
    });
  }

  function field(doc, id) { return doc.getElementById(id); }

  /* contactId is null in order mode: the order's payment asks for no contact. */
  function readForm(doc, setup) {
    function text(id) { return String(field(doc, id).value || "").trim(); }
    var billTo = {};
    BILL_TO.forEach(function (name) { billTo[name] = text(name); });
    return {
      contactId: setup && setup.orderId ? null : text("contact"), billTo: billTo,
      setAsDefault: !!field(doc, "setAsDefault").checked,
      cardData: { cardNumber: text("cardNumber").replace(/[\s-]/g, ""), month: text("expMonth"),
                  year: text("expYear"), cardCode: text("cardCode") }
    };
  }

  /* Problems a person can fix before Accept.js is called: {field id: text}. Accept.js checks the card again. */
  function validate(values, today) {
    var problems = {};
    Object.keys(REQUIRED).forEach(function (name) {
      if (name === "contact" && values.contactId === null) { return; }
      var value = name === "contact" ? values.contactId : values.billTo[name];
      if (!value) { problems[name] = REQUIRED[name]; }
    });
    var card = values.cardData;
    if (!/^\d{13,19}$/.test(card.cardNumber)) { problems.cardNumber = "Enter the card number (13 to 19 digits)."; }
    var month = /^\d{1,2}$/.test(card.month) ? parseInt(card.month, 10) : 0;
    if (month < 1 || month > 12) { problems.expMonth = "Enter the expiry month, 01 to 12."; }
    var year = /^\d{2}$|^\d{4}$/.test(card.year) ? parseInt(card.year.length === 2 ? "20" + card.year : card.year, 10)
                                                 : 0;
    var now = today || new Date();
    if (!year) { problems.expYear = "Enter the expiry year, for example " + now.getFullYear() + "."; }
    else if (!problems.expMonth && year * 12 + month < now.getFullYear() * 12 + now.getMonth() + 1) {
      problems.expYear = "This card has expired.";
    }
    if (!/^\d{3,4}$/.test(card.cardCode)) { problems.cardCode = "Enter the 3 or 4 digit security code."; }
    return problems;
  }

  function showProblems(doc, problems) {
    var first = null;
    FIELDS.forEach(function (name) {
      var input = field(doc, name), note = field(doc, name + "-error");
      if (!input || !note) { return; }
      note.textContent = problems[name] || "";
      if (problems[name]) {
        input.setAttribute("aria-invalid", "true");
        first = first || input;
      } else {
        input.removeAttribute("aria-invalid");
      }
    });
    var count = Object.keys(problems).length;
    field(doc, "form-errors").textContent = count ? "Please correct " + (count === 1 ? "1 field" : count + " fields") +
                                                    " below." : "";
    if (first) { first.focus(); }
  }

  /* What W365.Account.directEntry / W365.SalesOrder.submitWithNewCard need of a form context: the record they act on
     (the dialog has no form). */
  function recordContext(table, id) {
    return { data: { entity: { getEntityName: function () { return table; },
                               getId: function () { return id; } },
                     refresh: function () { return Promise.resolve(); } },   // the opener refreshes its form on close
             getAttribute: function () { return null; } };
  }

  function clearCard(doc) {
    CARD.forEach(function (name) { field(doc, name).value = ""; });
  }

  /* Tokenize the card with Accept.js and call w365_AddPaymentProfile (or, in order mode, w365_SubmitOrderPayment);
     resolves with the outcome. */
  function submit(doc, setup, values) {
    if (setup.orderId) {
      return W365.SalesOrder.submitWithNewCard(recordContext("salesorder", setup.orderId), doc, {
        acceptJsUrl: setup.acceptJsUrl, authData: setup.authData, cardData: values.cardData, billTo: values.billTo
      });
    }
    return W365.Account.directEntry(recordContext("account", setup.accountId), doc, {
      acceptJsUrl: setup.acceptJsUrl, authData: setup.authData, cardData: values.cardData,
      billTo: values.billTo, contactId: values.contactId, setAsDefault: values.setAsDefault
    });
  }

  function fillContacts(doc, setup) {
    var select = field(doc, "contact");
    setup.contacts.forEach(function (contact) {
      var option = doc.createElement("option");
      option.value = contact.id;
      option.textContent = contact.name || contact.id;
      select.appendChild(option);
    });
    var only = setup.contacts.length === 1 ? setup.contacts[0].id : null;
    var primary = setup.contacts.some(function (c) { return c.id === setup.primaryContactId; });
    select.value = primary ? setup.primaryContactId : (only || "");
  }

  /* Fill the empty bill-to fields from the account and the chosen contact; never overwrite what was typed. */
  function prefill(doc, setup) {
    var contactId = field(doc, "contact").value;
    var contact = setup.contacts.filter(function (c) { return c.id === contactId; })[0] || {};
    var values = Object.assign({}, setup.billTo, { firstName: contact.firstName, lastName: contact.lastName },
                               contact.phone ? { phoneNumber: contact.phone } : {});
    BILL_TO.forEach(function (name) {
      var input = field(doc, name);
      if (!input.value && values[name]) { input.value = values[name]; }
    });
  }

  function setBusy(doc, busy, label) {
    var button = field(doc, "submit");
    button.disabled = busy;
    button.textContent = label;
    field(doc, "direct-entry").setAttribute("aria-busy", busy ? "true" : "false");
  }

  function showStatus(doc, outcome) {
    var status = field(doc, "form-status");
    status.textContent = outcome.message;
    status.className = { Succeeded: "status ok", Failed: "status failed" }[outcome.status] || "status";
  }

  /* Order mode: no contact picker and no default option; the submit button names the payment. */
  function showOrderMode(doc) {
    field(doc, "contact-section").hidden = true;
    field(doc, "options-section").hidden = true;
    doc.title = "Pay with new card";
  }

  function showOrder(doc, setup) {
    var total = field(doc, "order-total");
    total.textContent = "Total to charge: " + (setup.total || "not set") +
                        (setup.orderName ? " (order " + setup.orderName + ")" : "");
    total.hidden = false;
  }

  /* Wire the page. win: the dialog's window; Xrm comes from the app window around the dialog. */
  function init(win) {
    var doc = win.document;
    // The dialog's own frame has no full Xrm: use the app's around it (same origin), as common.js expects a global.
    var xrm = (win.parent && win.parent !== win && win.parent.Xrm) || win.Xrm;
    if (xrm) { globalThis.Xrm = xrm; }
    var form = field(doc, "direct-entry");
    var setup = null, busy = false, data = null, words = WORDS.account;
    try {
      data = pageData(win.location.search);
    } catch (error) {
      data = error;
    }
    if (data.mode === "order") {
      words = WORDS.order;
      showOrderMode(doc);
    }
    setBusy(doc, true, "Loading\u2026");
    form.addEventListener("submit", function (event) {
      event.preventDefault();                      // the form itself is never posted
      if (busy || !setup) { return; }
      var values = readForm(doc, setup);
      var problems = validate(values);
      showProblems(doc, problems);
      if (Object.keys(problems).length) { return; }
      busy = true;
      setBusy(doc, true, words.busy);
      showStatus(doc, { status: "", message: "" });
      submit(doc, setup, values).then(function (outcome) {
        busy = false;
        showStatus(doc, outcome);
        // A payment still being processed is not offered again: a second charge could follow.
        if (outcome.status === "Succeeded" || (setup.orderId && outcome.status === "Pending")) {
          clearCard(doc);
          field(doc, "submit").textContent = words.done;
          field(doc, "form-status").focus();
          return;                                  // one card per opening: the button stays disabled
        }
        field(doc, "cardCode").value = "";         // a nonce is single-use: the card is sent again next time
        setBusy(doc, false, words.idle);
      });
    });
    field(doc, "contact").addEventListener("change", function () { if (setup) { prefill(doc, setup); } });
    var ready = data instanceof Error ? Promise.reject(data) : loadSetup(data);
    return ready.then(function (loaded) {
      if (loaded.orderId) {
        showOrder(doc, loaded);
      } else if (!loaded.contacts.length) {
        throw new Error("This account has no active contact. Add a contact to the account first.");
      }
      fillContacts(doc, loaded);
      prefill(doc, loaded);
      setup = loaded;
      setBusy(doc, false, words.idle);
      return setup;
    }).catch(function (error) {
      setBusy(doc, false, words.idle);
      field(doc, "submit").disabled = true;        // nothing can be added until the cause is fixed
      showStatus(doc, { status: "Failed", message: (error && error.message) || String(error) });
      return null;
    });
  }

  return { pageData: pageData, acceptJsUrl: acceptJsUrl, readVariables: readVariables, loadSetup: loadSetup,
           readForm: readForm, validate: validate, submit: submit, init: init, FIELDS: FIELDS, CARD: CARD,
           BILL_TO: BILL_TO, VARIABLES: VARIABLES };
})();

if (typeof module !== "undefined") { module.exports = W365; }
else if (typeof window !== "undefined" && window.document && window.document.getElementById("direct-entry")) {
  W365.DirectEntry.init(window);
}
