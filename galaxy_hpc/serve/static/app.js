// The catalog browser: pages of thumbnails over /api/stores, an object panel, and
// generation through /infer. No framework, no CDN: compute nodes have no network.
"use strict";
const $ = (id) => document.getElementById(id);
const PAGE = 24;
const state = { stores: [], store: null, offset: 0, total: 0, models: {}, init: null };

async function api(path, options) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${message}`);
  }
  return response;
}

function query(offset) {
  const params = new URLSearchParams({ offset, limit: PAGE });
  for (const part of $("where").value.split(";")) {
    if (part.trim()) params.append("where", part.trim());
  }
  if ($("sort").value) params.set("sort", $("sort").value);
  if ($("desc").checked) params.set("desc", "true");
  return params;
}

async function showPage(grid, name, offset) {
  const page = await (await api(`/api/stores/${name}/items?${query(offset)}`)).json();
  grid.replaceChildren();
  for (const item of page.items) {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.index = item.index;
    const img = document.createElement("img");
    img.className = "thumb";
    img.src = `/api/stores/${name}/items/${item.index}/thumb.png`;
    img.alt = `${name} ${item.index}`;
    tile.append(img);
    const label = page.columns.slice(0, 2).map((c) => `${c}: ${item[c]}`).join(" | ");
    tile.append(document.createTextNode(`#${item.index} ${label}`));
    tile.title = JSON.stringify(item);
    tile.onclick = () => openObject(name, item.index, tile);
    grid.append(tile);
  }
  return page;
}

async function refresh() {
  const name = state.store.name;
  $("grid-title").textContent = `${name}`;
  try {
    const page = await showPage($("grid"), name, state.offset);
    state.total = page.total;
    const pages = Math.max(1, Math.ceil(page.total / PAGE));
    $("page").textContent = ` page ${Math.floor(state.offset / PAGE) + 1} of ${pages} ` +
      `(${page.total} items) `;
    const other = $("compare").value;
    $("compare-pane").hidden = !other;
    if (other) {
      $("compare-title").textContent = other;
      await showPage($("compare-grid"), other, state.offset);
    }
  } catch (error) {
    $("page").innerHTML = `<span class="error">${error.message}</span>`;
  }
}

function chooseStore(name) {
  state.store = state.stores.find((s) => s.name === name);
  state.offset = 0;
  const sort = $("sort");
  sort.replaceChildren(new Option("(store order)", ""));
  for (const column of Object.keys(state.store.columns)) sort.append(new Option(column, column));
  const band = $("band");
  band.replaceChildren(new Option("colour", ""));
  for (let b = 0; b < state.store.image_shape[0]; b++) band.append(new Option(`band ${b}`, b));
  refresh();
}

async function openObject(name, index, tile) {
  document.querySelectorAll(".tile.selected").forEach((t) => t.classList.remove("selected"));
  if (tile) tile.classList.add("selected");
  const item = await (await api(`/api/stores/${name}/items/${index}`)).json();
  $("object").hidden = false;
  $("object-title").textContent = `${name} #${index}`;
  const base = `/api/stores/${name}/items/${index}`;
  const band = $("band").value;
  $("object-image").src = `${base}/image.png` + (band ? `?band=${band}` : "");
  $("dl-png").href = `${base}/image.png`;
  $("dl-cutout").href = `${base}/cutout.fits`;
  $("dl-row").href = `${base}/row.fits`;
  $("report").hidden = !item.report;
  if (item.report) $("report").href = item.report;
  const table = $("columns");
  table.replaceChildren();
  for (const column of item.columns) {
    const row = table.insertRow();
    row.insertCell().textContent = column.name;
    row.insertCell().textContent = column.value;
    row.insertCell().textContent = column.unit || "";
    row.title = column.description || "";
  }
  $("provenance").textContent = JSON.stringify(item.provenance, null, 1);
  state.selected = { store: name, index };
}

function setupModels(models) {
  state.models = models;
  const model = models.model;
  if (!model) return;
  $("generate").hidden = false;
  $("gen-model").textContent = `${model.kind}` + (models.base ? ` (beside its base: ${models.base.kind})` : "");
  const text = model.condition_kind === "text";
  $("gen-prompt-label").hidden = !text;
  const conditions = $("gen-conditions");
  conditions.replaceChildren();
  for (const name of model.condition_names || []) {
    const label = document.createElement("label");
    label.textContent = `${name} `;
    const input = document.createElement("input");
    input.type = "number"; input.step = "any"; input.value = "0"; input.dataset.name = name;
    label.append(input);
    conditions.append(label);
  }
  $("gen-steps").value = model.sampler.steps;
  $("gen-steps-value").textContent = model.sampler.steps;
  $("gen-size").placeholder = model.image_shape[2];
  $("gen-size").disabled = !model.resizable;
  $("use-init").hidden = !model.supports_init_images;
}

function body(which) {
  const model = state.models.model;
  const request = { n: Number($("gen-n").value), seed: Number($("gen-seed").value),
                    model: which, format: "base64" };
  if (model.uses_sampler) {
    request.steps = Number($("gen-steps").value);
    request.guidance_scale = Number($("gen-guidance").value);
  }
  if ($("gen-size").value) request.size = Number($("gen-size").value);
  if (model.condition_kind === "text") request.prompt = $("gen-prompt").value;
  else {
    request.conditions = {};
    for (const input of $("gen-conditions").querySelectorAll("input")) {
      request.conditions[input.dataset.name] = Number(input.value);
    }
  }
  if (state.init) { request.init = state.init; request.strength = Number($("gen-strength").value); }
  return request;
}

async function generate() {
  $("gen-status").textContent = "drawing...";
  const results = $("results");
  results.replaceChildren();
  try {
    const which = state.models.base ? ["base", "model"] : ["model"];
    const drawn = await Promise.all(which.map(async (name) => {
      const response = await api("/infer", { method: "POST", body: JSON.stringify(body(name)),
                                             headers: { "Content-Type": "application/json" } });
      return [name, await response.json()];
    }));
    for (const [name, out] of drawn) {
      const row = document.createElement("div");
      row.className = "row";
      row.append(document.createTextNode(name));
      out.images.forEach((data, k) => {
        const img = document.createElement("img");
        img.className = "generated";
        img.src = `data:image/png;base64,${data}`;
        img.title = `seed ${out.seeds[k]}`;
        row.append(img);
      });
      results.append(row);
    }
    $("gen-status").textContent = "done";
  } catch (error) {
    $("gen-status").innerHTML = `<span class="error">${error.message}</span>`;
  }
}

function wire() {
  $("store").onchange = () => chooseStore($("store").value);
  $("compare").onchange = refresh;
  $("apply").onclick = () => { state.offset = 0; refresh(); };
  $("where").onkeydown = (e) => { if (e.key === "Enter") $("apply").click(); };
  $("prev").onclick = () => { state.offset = Math.max(0, state.offset - PAGE); refresh(); };
  $("next").onclick = () => {
    if (state.offset + PAGE < state.total) { state.offset += PAGE; refresh(); }
  };
  $("band").onchange = () => state.selected && openObject(state.selected.store, state.selected.index);
  $("gen-run").onclick = generate;
  for (const name of ["steps", "guidance", "strength"]) {
    $(`gen-${name}`).oninput = () => { $(`gen-${name}-value`).textContent = $(`gen-${name}`).value; };
  }
  $("use-init").onclick = () => {
    state.init = { ...state.selected };
    $("gen-init").hidden = false;
    $("gen-init-name").textContent = `${state.init.store} #${state.init.index}`;
  };
  $("gen-init-clear").onclick = () => { state.init = null; $("gen-init").hidden = true; };
}

async function start() {
  wire();
  state.stores = await (await api("/api/stores")).json();
  for (const store of state.stores) {
    $("store").append(new Option(`${store.name} (${store.count})`, store.name));
    $("compare").append(new Option(store.name, store.name));
  }
  setupModels(await (await api("/api/models")).json());
  if (state.stores.length) chooseStore(state.stores[0].name);
}

start();
