// A brand that does not write Python: its client is generated from Consentry's OpenAPI document by
// openapi-typescript (types) and driven with openapi-fetch, both unmodified from npm. It takes a brand
// token, publishes an offer, lists its grants and reads a page of its access log; every request and
// answer is typed by the generated `paths`, so `tsc` checks this script against the document.
//
//   node build/brand.js BASE_URL CLIENT_ID CLIENT_SECRET    (prints one JSON object)

import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./generated/consentry.js";

type OfferDraft = components["schemas"]["OfferDraft"];
type Problem = components["schemas"]["Problem"];

const [base, clientId, clientSecret] = process.argv.slice(2);
if (!base || !clientId || !clientSecret) {
  throw new Error("usage: node build/brand.js BASE_URL CLIENT_ID CLIENT_SECRET");
}

const consentry = createClient<paths>({ baseUrl: base });

function failed(what: string, status: number, body: unknown): never {
  throw new Error(`${what}: ${status} ${JSON.stringify(body)}`);
}

// The brand's own token (client credentials, RFC 6749 §4.4), form-encoded as the token endpoint wants.
const issued = await consentry.POST("/oauth/token", {
  body: { grant_type: "client_credentials", scope: "offers:read offers:write grants:read" },
  bodySerializer: (form) => new URLSearchParams(form),
  headers: {
    "Content-Type": "application/x-www-form-urlencoded",
    Authorization: `Basic ${btoa(`${clientId}:${clientSecret}`)}`,
  },
});
if (!issued.data) failed("token", issued.response.status, issued.error);
const token: string = issued.data.access_token;

const bearer: Middleware = {
  onRequest({ request }) {
    request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
};
consentry.use(bearer);

const draft: OfferDraft = {
  title: "Seasonal boxes, picked for you",
  description: "We pick the season's vegetables for the way you cook.",
  required_fields: ["email"],
  optional_fields: ["dietary"],
  purpose: "personalised_offers",
  purpose_explanation: "We fill your box with what you eat.",
  grant_duration_days: 90,
  retention_days: 30,
  recipients: [],
  value: {
    kind: "discount",
    amount: "15",
    unit: "percent",
    description: "15 % off every box",
    due: { when: "within_days", days: 14 },
  },
};
const published = await consentry.POST("/v1/offers", { body: draft });
if (!published.data) failed("publish", published.response.status, published.error);
const offer = published.data;

const read = await consentry.GET("/v1/offers/{offer_id}", { params: { path: { offer_id: offer.id } } });
if (!read.data) failed("read the offer", read.response.status, read.error);

const grants = await consentry.GET("/v1/grants", { params: { query: { limit: 10 } } });
if (!grants.data) failed("list grants", grants.response.status, grants.error);

const log = await consentry.GET("/v1/access-log", { params: { query: { limit: 5 } } });
if (!log.data) failed("read the access log", log.response.status, log.error);

// An error is a typed problem: its `type` is one of those the document lists for this answer.
const missing = await consentry.GET("/v1/offers/{offer_id}", {
  params: { path: { offer_id: "00000000-0000-4000-8000-000000000000" } },
});
const problem: Problem | undefined = missing.error;

console.log(
  JSON.stringify({
    offer: { id: offer.id, version: offer.version, title: read.data.title, status: read.data.status },
    grants: grants.data.items.map((grant) => ({ id: grant.id, status: grant.status, offer_id: grant.offer_id })),
    access_log: {
      tree_size: log.data.tree_size,
      verifier_key: log.data.verifier_key,
      kinds: log.data.items.map((entry) => entry.kind),
      next_cursor: log.data.next_cursor,
    },
    missing: { status: missing.response.status, type: problem?.type, detail: problem?.detail },
  }),
);
