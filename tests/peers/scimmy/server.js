// A second, independent SCIM 2.0 service provider for Quartermaster's connector tests: SCIMMY
// (npm `scimmy`) with its Express routers (`scimmy-routers`), storing Users and Groups in Maps.
//
//   node server.js PORT TOKEN [MODE]
//
// Every path prefix is its own empty store (`http://127.0.0.1:PORT/<tenant>/v2`), as
// scim2-server's --dynamic-tenants, so one process serves a whole test binary.
//
// MODE (or QM_SCIMMY_MODE):
//   spec   SCIMMY as shipped: filters honoured (`userName eq` is case-sensitive, as SCIMMY's
//          matcher is), User.groups populated, duplicate userName (any case) → 409 uniqueness.
//   lying  The layout of django-scim2 as shipped: ServiceProviderConfig says filter.supported
//          false, and a listing with a filter answers 200 with zero results (the filter is
//          ignored, nothing matches); the path-filter member removal
//          (`"path": "members[value eq \"…\"]"`) answers 501, the `"path": "members", "value":
//          [{"value": …}]` form works.
//   nopatch ServiceProviderConfig says patch.supported false and every PATCH answers 501; a
//          group changes by PUT of the whole group.
// In any mode, a tenant whose name starts with "blind" shows no memberships (answers carry
// neither Group.members nor User.groups; /Schemas and /ResourceTypes are 404), as some SaaS
// providers do; changes still apply. `GET /_qm/<tenant>` (with the token) dumps a tenant's
// store as it truly is, for the tests' independent reads. A tenant whose name starts with
// "stale" keeps listing in User.groups every group the user was ever in (its reads disagree).
// A tenant whose name starts with "deaf" answers every filter with zero results while its
// ServiceProviderConfig says filters are supported (a filter ignored without saying so).
// It prints "ready" on stdout once it listens, and exits when its stdin closes.
"use strict";

const express = require("express");
const SCIMMY = require("scimmy").default;
const SCIMMYRouters = require("scimmy-routers").default;
const crypto = require("node:crypto");

const [port, token, modeArg] = process.argv.slice(2);
const mode = modeArg || process.env.QM_SCIMMY_MODE || "spec";
if (!port || !token || !["spec", "lying", "nopatch"].includes(mode)) {
  console.error("usage: node server.js PORT TOKEN [spec|lying|nopatch]");
  process.exit(2);
}

const tenants = new Map();
function store(name) {
  if (!tenants.has(name))
    tenants.set(name, { users: new Map(), groups: new Map(), stale: name.startsWith("stale"), deaf: name.startsWith("deaf"), ever: new Set() });
  return tenants.get(name);
}

const plain = (v) => JSON.parse(JSON.stringify(v));
const conflict = (what) => new SCIMMY.Types.Error(409, "uniqueness", what);

// A user as served: with the groups it is a member of (readOnly, computed).
function userOut(st, u) {
  const groups = [...st.groups.values()]
    .filter((g) => (g.members || []).some((m) => m.value === u.id) || (st.stale && st.ever.has(`${g.id} ${u.id}`)))
    .map((g) => ({ value: g.id, display: g.displayName, type: "direct" }));
  return { ...u, groups };
}

function list(resource, all, st) {
  if (resource.id) {
    const one = all.find((x) => x.id === resource.id);
    if (!one) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
    return one;
  }
  if (resource.filter) return mode === "lying" || st.deaf ? [] : resource.filter.match(all);
  return all;
}

function stamp(old) {
  const now = new Date().toISOString();
  return { created: old?.meta?.created || now, lastModified: now };
}

SCIMMY.Resources.declare(SCIMMY.Resources.User, {
  egress: (resource, st) => list(resource, [...st.users.values()].map((u) => userOut(st, u)), st),
  ingress: (resource, data, st) => {
    const d = plain(data);
    delete d.schemas; delete d.groups; delete d.id;
    const old = resource.id ? st.users.get(resource.id) : undefined;
    if (resource.id && !old) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
    const id = resource.id || crypto.randomUUID();
    const name = String(d.userName || "").toLowerCase();
    for (const u of st.users.values())
      if (u.id !== id && String(u.userName).toLowerCase() === name)
        throw conflict(`userName ${d.userName} is already taken`);
    const u = { ...d, id, meta: stamp(old) };
    st.users.set(id, u);
    return userOut(st, u);
  },
  degress: (resource, st) => {
    if (!st.users.delete(resource.id)) throw new SCIMMY.Types.Error(404, null, "not found");
    for (const g of st.groups.values())
      g.members = (g.members || []).filter((m) => m.value !== resource.id);
  },
});

SCIMMY.Resources.declare(SCIMMY.Resources.Group, {
  egress: (resource, st) => list(resource, [...st.groups.values()].map(plain), st),
  ingress: (resource, data, st) => {
    const d = plain(data);
    delete d.schemas; delete d.id;
    const old = resource.id ? st.groups.get(resource.id) : undefined;
    if (resource.id && !old) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
    const id = resource.id || crypto.randomUUID();
    for (const g of st.groups.values())
      if (g.id !== id && g.displayName === d.displayName)
        throw conflict(`group ${d.displayName} exists`);
    const members = (d.members || []).filter((m) => st.users.has(m.value));
    const g = { ...d, id, members, meta: stamp(old) };
    for (const m of members) st.ever.add(`${id} ${m.value}`);
    st.groups.set(id, g);
    return plain(g);
  },
  degress: (resource, st) => {
    if (!st.groups.delete(resource.id)) throw new SCIMMY.Types.Error(404, null, "not found");
  },
});

const scim = new SCIMMYRouters({
  type: "bearer",
  handler: (req) => {
    if (req.header("Authorization") !== `Bearer ${token}`) throw new Error("bad token");
    return "qm-tests";
  },
  context: (req) => req.qmStore,
});
if (mode === "lying") SCIMMY.Config.set("filter", false);
if (mode === "nopatch") SCIMMY.Config.set("patch", false);

const notImplemented = (res, detail) =>
  res.status(501).type("application/scim+json").send({
    schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
    status: "501",
    detail,
  });

// Removes memberships from an answer (blind tenants).
function hideMemberships(body) {
  const strip = (r) => {
    if (r && typeof r === "object") { delete r.members; delete r.groups; }
    return r;
  };
  const v = plain(body);
  strip(v);
  if (Array.isArray(v && v.Resources)) v.Resources.forEach(strip);
  return v;
}

const app = express();
// One request per connection, as scim2-server does (the tests' recording proxy reads each
// answer to the end of its connection).
app.use((req, res, next) => {
  res.set("Connection", "close");
  next();
});
app.get("/_qm/:tenant", (req, res) => {
  if (req.header("Authorization") !== `Bearer ${token}`) return res.status(401).send({});
  const st = store(req.params.tenant);
  res.send({ users: [...st.users.values()], groups: [...st.groups.values()] });
});
app.use("/:tenant/v2", express.json({ type: ["application/scim+json", "application/json"] }), (req, res, next) => {
  req.qmStore = store(req.params.tenant);
  if (req.params.tenant.startsWith("blind")) {
    if (/^\/(Schemas|ResourceTypes)/.test(req.path))
      return res.status(404).send({ schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], status: "404", detail: "Not found" });
    const send = res.send.bind(res);
    res.send = (body) =>
      send(body && typeof body === "object" && !Buffer.isBuffer(body) ? hideMemberships(body) : body);
  }
  if (req.method === "PATCH" && mode === "nopatch") return notImplemented(res, "PATCH is not supported");
  if (req.method === "PATCH" && mode === "lying") {
    const ops = (req.body && req.body.Operations) || [];
    if (ops.some((o) => String(o.op).toLowerCase() === "remove" && String(o.path || "").includes("[")))
      return notImplemented(res, "Not Implemented");
  }
  next();
}, scim);

const server = app.listen(Number(port), "127.0.0.1", () => console.log("ready"));
process.stdin.on("end", () => server.close(() => process.exit(0)));
process.stdin.resume();
