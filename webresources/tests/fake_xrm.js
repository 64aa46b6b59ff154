/* A fake Xrm for the ribbon script tests: records what the scripts call, and plays the service by writing the
   w365_operation row for each executed request after `delayPolls` empty polls. */
"use strict";

function fakeXrm(options) {
  const opts = Object.assign({ delayPolls: 1, status: 100000000, message: "Done.", confirm: true }, options || {});
  const xrm = {
    executed: [], polls: [], alerts: [], confirms: [], navigations: [], operations: [], progress: [],
    WebApi: {
      online: {
        execute(request) {
          xrm.executed.push({ request, metadata: request.getMetadata() });
          if (opts.executeFails) { return Promise.reject(new Error(opts.executeFails)); }
          let remaining = opts.delayPolls;
          if (opts.claims) {       // the service claims the RequestId first: a row with no status yet
            xrm.operations.push({ w365_requestid: request.RequestId, w365_status: null, w365_message: "In progress." });
          }
          xrm.pending = () => {
            if (remaining-- > 0) { return; }
            if (opts.neverAnswers) { return; }
            xrm.operations = xrm.operations.filter((row) => row.w365_requestid !== request.RequestId);
            xrm.operations.push({ w365_requestid: request.RequestId, w365_status: opts.status,
                                  w365_message: opts.message });
          };
          return Promise.resolve({ ok: true, status: 204 });
        }
      },
      retrieveMultipleRecords(table, query) {
        xrm.polls.push({ table, query });
        if (xrm.pending) { xrm.pending(); }
        const id = /w365_requestid eq '([^']+)'/.exec(query)[1];
        return Promise.resolve({ entities: xrm.operations.filter((row) => row.w365_requestid === id) });
      }
    },
    Navigation: {
      openAlertDialog(strings) { xrm.alerts.push(strings); return Promise.resolve(); },
      openConfirmDialog(strings) { xrm.confirms.push(strings); return Promise.resolve({ confirmed: opts.confirm }); },
      navigateTo(page, options) { xrm.navigations.push({ page, options }); return Promise.resolve(); }
    },
    Utility: {
      showProgressIndicator(text) { xrm.progress.push(text); },
      closeProgressIndicator() { xrm.progress.push("closed"); }
    }
  };
  return xrm;
}

function formContext(table, id, attributes) {
  const refreshed = [];
  return {
    refreshed,
    data: { entity: { getEntityName: () => table, getId: () => "{" + id.toUpperCase() + "}" },
            refresh(save) { refreshed.push(save); return Promise.resolve(); } },
    getAttribute(name) {
      return attributes && name in attributes ? { getValue: () => attributes[name] } : null;
    }
  };
}

module.exports = { fakeXrm, formContext };
