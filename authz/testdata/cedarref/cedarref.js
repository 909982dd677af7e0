// Reference Cedar evaluator for the authz differential test (authz/differential_test.go).
//
// Reads one JSON document on stdin:
//   {"policySets": [{"<id>": "<cedar text>", ...}, ...],
//    "cases": [{"policySet": 0, "principal": {...}, "action": {...}, "resource": {...},
//               "context": {...}, "entities": [...]}, ...]}
// and writes one JSON array on stdout, one element per case:
//   {"decision": "allow"|"deny", "reasons": ["<id>", ...], "errors": ["<id>", ...]}
// or {"failure": "<message>"} when the official engine rejects the call.
// Every case runs in this single process so the WebAssembly module is loaded once.
'use strict';

const cedar = require('@cedar-policy/cedar-wasm/nodejs');

function main(input) {
  const doc = JSON.parse(input);
  const out = [];
  for (const c of doc.cases) {
    const answer = cedar.isAuthorized({
      principal: c.principal,
      action: c.action,
      resource: c.resource,
      context: c.context,
      policies: { staticPolicies: doc.policySets[c.policySet] },
      entities: c.entities,
    });
    if (answer.type !== 'success') {
      out.push({ failure: answer.errors.map((e) => e.message).join('; ') });
      continue;
    }
    const d = answer.response.diagnostics;
    out.push({
      decision: answer.response.decision,
      reasons: [...d.reason].sort(),
      errors: d.errors.map((e) => e.policyId).sort(),
    });
  }
  process.stdout.write(JSON.stringify({ version: cedar.getCedarVersion(), results: out }));
}

let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { buf += chunk; });
process.stdin.on('end', () => main(buf));
