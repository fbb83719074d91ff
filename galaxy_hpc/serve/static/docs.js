// The API page, drawn from /openapi.json here: FastAPI's Swagger page needs a CDN.
"use strict";
function schemaText(spec, schema) {
  if (!schema) return "";
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    const props = spec.components.schemas[name].properties || {};
    return `${name} {` + Object.entries(props).map(([k, v]) =>
      `${k}: ${v.type || (v.anyOf || []).map((a) => a.type || a.$ref?.split("/").pop()).join("|")}`)
      .join(", ") + "}";
  }
  return schema.type || "";
}

async function draw() {
  const spec = await (await fetch("/openapi.json")).json();
  const root = document.getElementById("api");
  const title = document.createElement("h2");
  title.textContent = `${spec.info.title} ${spec.info.version}`;
  root.append(title);
  const table = document.createElement("table");
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const row = table.insertRow();
      row.className = "endpoint";
      row.insertCell().textContent = method.toUpperCase();
      row.insertCell().textContent = path;
      row.insertCell().textContent = op.summary || "";
      const params = (op.parameters || []).map((p) => `${p.name} (${p.in})`).join(", ");
      const body = op.requestBody ? schemaText(spec, op.requestBody.content["application/json"].schema) : "";
      row.insertCell().textContent = [params, body].filter(Boolean).join("; ");
    }
  }
  root.append(table);
}
draw();
