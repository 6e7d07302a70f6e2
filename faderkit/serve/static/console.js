// faderkit mixing console: a thin client of the server's API (see faderkit/serve/app.py).
// Edits are coalesced: at most one request is in flight; moves made meanwhile are merged into
// the next request, which carries only the latest fader positions, so no stale edit is queued.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  model: null,        // GET /api/model
  image: null,        // id of the held image
  name: "image",      // its file name, for the download
  inferred: {},       // attribute -> the classifier's value for this image
  values: {},         // attribute -> current fader value (number) or value name
  options: {},        // edit options (the output mode, ...) the server offers
  wanted: 0,          // serial of the latest state asked for
  sent: 0,            // serial of the latest state sent
  busy: false,        // a request is in flight
  editUrl: null,      // object URL of the shown edit
  testOffset: 0,
  openedTest: null,   // index of the test image held (marked on its thumbnail), null for a file
};

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, init) {
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "the faderkit server does not answer; is `faderkit serve` still running?");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new ApiError(response.status, message);
  }
  return response;
}

function showError(message) {
  const box = $("error");
  box.textContent = message ? `Error: ${message}` : "";
  box.classList.toggle("shown", Boolean(message));
}

function say(message) { $("status").textContent = message; }

// where a value sits along a fader track: the thumb's centre travels from 8px to (height - 8px)
const along = (fraction) => `calc(8px + ${fraction} * (100% - 16px))`;
const fmt = (v) => (Math.round(v * 100) / 100).toFixed(2);
const pretty = (name) => name.replace(/_/g, " ");

function describe(v) {
  if (v < 0) return "beyond absent";
  if (v === 0) return "absent";
  if (v < 1) return `${Math.round(v * 100)}% present`;
  if (v === 1) return "present";
  return "beyond present, extrapolated";
}

// ---------------------------------------------------------------- building the faders

function buildFaders(model) {
  const strips = $("strips");
  strips.replaceChildren();
  const [lo, hi] = model.range;
  for (const attr of model.attributes) {
    strips.append(attr.binary ? binaryStrip(attr.name, lo, hi) : choiceStrip(attr));
  }
  const options = $("options");
  options.replaceChildren();
  for (const opt of model.options) {
    state.options[opt.name] = opt.choices[0];
    options.append(radioGroup(`option-${opt.name}`, opt.label, opt.choices, opt.choices[0], (v) => {
      state.options[opt.name] = v;
      showOriginal();  // every option (the output mode, the faces) changes what the edit is compared with
      requestEdit();
      say(`${opt.label}: ${v}`);
    }, opt.notes || {}));
  }
}

function binaryStrip(name, lo, hi) {
  const id = `fader-${name}`;
  const strip = document.createElement("div");
  strip.className = "channel";
  strip.setAttribute("role", "group");
  strip.setAttribute("aria-labelledby", `label-${name}`);

  const out = document.createElement("output");
  out.id = `out-${name}`;
  out.htmlFor = id;
  out.textContent = "–";

  const track = document.createElement("div");
  track.className = "track";
  const span = hi - lo;
  track.style.setProperty("--p0", `${((0 - lo) / span) * 100}%`);
  track.style.setProperty("--p1", `${((1 - lo) / span) * 100}%`);
  for (const mark of [hi, 1, 0, lo]) {
    const tick = document.createElement("span");
    tick.className = "tick";
    tick.setAttribute("aria-hidden", "true");
    tick.style.bottom = along((mark - lo) / span);
    tick.textContent = mark === 0 ? "0" : mark === 1 ? "1" : String(mark);
    track.append(tick);
  }
  const notch = document.createElement("span");
  notch.className = "notch";
  notch.setAttribute("aria-hidden", "true");
  notch.hidden = true;
  const input = document.createElement("input");
  input.type = "range";
  input.id = id;
  input.min = lo; input.max = hi; input.step = 0.01; input.value = 0;
  input.disabled = true;
  input.dataset.attribute = name;
  input.setAttribute("aria-describedby", "fader-help");
  input.addEventListener("input", () => setValue(name, Number(input.value), true));
  input.addEventListener("keydown", (e) => {
    if (!e.shiftKey) return;
    const delta = { ArrowUp: 0.1, ArrowRight: 0.1, ArrowDown: -0.1, ArrowLeft: -0.1 }[e.key];
    if (delta === undefined) return;
    e.preventDefault();
    setValue(name, Math.min(hi, Math.max(lo, Math.round((Number(input.value) + delta) * 100) / 100)), true);
  });
  input.addEventListener("dblclick", () => resetOne(name));
  track.append(notch, input);

  const label = document.createElement("label");
  label.id = `label-${name}`;
  label.htmlFor = id;
  label.textContent = pretty(name);

  const reset = document.createElement("button");
  reset.type = "button";
  reset.className = "reset";
  reset.textContent = "Reset";
  reset.id = `reset-${name}`;
  reset.disabled = true;
  reset.addEventListener("click", () => resetOne(name));

  strip.append(out, track, label, reset);
  return strip;
}

function radioGroup(id, legendText, choices, current, onPick, notes = {}) {
  const fieldset = document.createElement("fieldset");
  fieldset.className = "choice";
  fieldset.id = id;
  const legend = document.createElement("legend");
  legend.textContent = legendText;
  fieldset.append(legend);
  for (const value of choices) {
    const label = document.createElement("label");
    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = id;
    radio.value = value;
    radio.checked = value === current;
    radio.addEventListener("change", () => { if (radio.checked) onPick(value); });
    label.append(radio);
    if (CSS.supports("color", value)) {  // flower colours and the like get a swatch
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.setAttribute("aria-hidden", "true");
      swatch.style.background = value;
      label.append(swatch);
    }
    label.append(document.createTextNode(value));
    if (notes[value]) {
      const note = document.createElement("span");
      note.className = "hint";
      note.textContent = notes[value];
      label.append(note);
    }
    fieldset.append(label);
  }
  return fieldset;
}

function choiceStrip(attr) {
  const strip = document.createElement("div");
  strip.className = "channel wide";
  const group = radioGroup(`choice-${attr.name}`, pretty(attr.name), attr.values, attr.values[0],
    (v) => setValue(attr.name, v, true));
  for (const radio of group.querySelectorAll("input")) radio.disabled = true;
  const seen = document.createElement("p");
  seen.className = "hint";
  seen.id = `seen-${attr.name}`;
  const reset = document.createElement("button");
  reset.type = "button";
  reset.className = "reset";
  reset.textContent = "Reset";
  reset.id = `reset-${attr.name}`;
  reset.disabled = true;
  reset.addEventListener("click", () => resetOne(attr.name));
  strip.append(group, seen, reset);
  return strip;
}

// ---------------------------------------------------------------- fader state

function attribute(name) { return state.model.attributes.find((a) => a.name === name); }

function setValue(name, value, edit) {
  state.values[name] = value;
  const attr = attribute(name);
  if (attr.binary) {
    const input = $(`fader-${name}`);
    if (Number(input.value) !== value) input.value = value;
    $(`out-${name}`).textContent = fmt(value);
    input.setAttribute("aria-valuetext", `${fmt(value)}, ${describe(value)}`);
  } else {
    for (const radio of document.querySelectorAll(`#choice-${name} input`)) radio.checked = radio.value === value;
  }
  if (edit) requestEdit();
}

function resetOne(name) {
  if (state.image === null) return;
  setValue(name, roundValue(state.inferred[name]), true);
  say(`${pretty(name)} reset to ${typeof state.inferred[name] === "number" ? fmt(state.inferred[name]) : state.inferred[name]}`);
}

const roundValue = (v) => (typeof v === "number" ? Math.round(v * 100) / 100 : v);

function loadFaders(held) {
  state.inferred = held.inferred;
  for (const attr of state.model.attributes) {
    const v = held.values[attr.name];
    if (attr.binary) {
      const input = $(`fader-${attr.name}`);
      input.disabled = false;
      const [lo, hi] = state.model.range;
      const notch = input.parentElement.querySelector(".notch");
      notch.hidden = false;
      notch.style.bottom = along((held.inferred[attr.name] - lo) / (hi - lo));
      $(`reset-${attr.name}`).setAttribute("aria-label",
        `Reset ${pretty(attr.name)} to ${fmt(held.inferred[attr.name])}, what the classifier sees`);
    } else {
      for (const radio of document.querySelectorAll(`#choice-${attr.name} input`)) radio.disabled = false;
      $(`seen-${attr.name}`).textContent = `classifier sees: ${held.inferred[attr.name]}`;
      $(`reset-${attr.name}`).setAttribute("aria-label",
        `Reset ${pretty(attr.name)} to ${held.inferred[attr.name]}, what the classifier sees`);
    }
    $(`reset-${attr.name}`).disabled = false;
    setValue(attr.name, v, false);
  }
  $("reset-all").disabled = false;
}

// ---------------------------------------------------------------- editing, coalesced

function requestEdit() {
  if (state.image === null) return;
  state.wanted += 1;
  if (!state.busy) pump();
}

async function pump() {
  state.busy = true;
  $("edit-figure").setAttribute("aria-busy", "true");
  try {
    while (state.sent !== state.wanted && state.image !== null) {
      const serial = state.wanted;
      state.sent = serial;
      const image = state.image;
      const values = { ...state.values };
      const options = { ...state.options };
      const started = performance.now();
      let blob;
      try {
        const response = await api("/api/edit", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ image, values, options }),
        });
        blob = await response.blob();
      } catch (e) {
        showError(e.message);
        if (e.status === 404) state.image = null;
        break;
      }
      if (image !== state.image) continue;  // another image was opened meanwhile
      await showEdit(blob, values, options, performance.now() - started, serial);
    }
  } finally {
    state.busy = false;
    $("edit-figure").setAttribute("aria-busy", "false");
  }
}

async function showEdit(blob, values, options, ms, serial) {
  const img = $("edit");
  const url = URL.createObjectURL(blob);
  img.src = url;
  try { await img.decode(); } catch (e) { /* shown on load anyway */ }
  img.hidden = false;
  if (state.editUrl) URL.revokeObjectURL(state.editUrl);
  state.editUrl = url;
  const summary = Object.entries(values)
    .map(([k, v]) => `${pretty(k)} ${typeof v === "number" ? fmt(v) : v}`).join(", ");
  const how = Object.values(options).join(", ");
  img.alt = `Edit of ${state.name}${how ? ` (${how})` : ""}: ${summary}`;
  img.dataset.values = JSON.stringify(values);
  img.dataset.options = JSON.stringify(options);
  img.dataset.serial = String(serial);
  const link = $("download");
  link.href = url;
  link.download = `${state.name.replace(/\.[^.]*$/, "") || "image"}-edit.png`;
  link.removeAttribute("aria-disabled");
  $("timing").textContent = `${Math.round(ms)} ms`;
  document.dispatchEvent(new CustomEvent("faderkit:preview", { detail: { values, options, ms, serial } }));
}

// ---------------------------------------------------------------- opening images

// What the edit is compared with: in a mode that shows the model's own square (decoded) that square
// (what it replaces), in one that shows the whole photo (local, the default) the photo as the server
// holds it (what it changes). The modes and what each shows come from /api/model.
function showOriginal() {
  if (state.image === null) return;
  const mode = state.model.modes.find((m) => m.name === state.options.mode);
  const decoded = mode !== undefined && !mode.whole_photo;
  const original = $("original");
  const crop = state.options.align === "crop" ? "?align=crop" : "";
  original.src = `/api/images/${encodeURIComponent(state.image)}/${decoded ? `input.png${crop}` : "photo.png"}`;
  original.alt = decoded ? `${state.name}, cropped and resized as the model sees it`
                         : `${state.name}, ${state.size[0]}x${state.size[1]} pixels`;
  $("original-note").textContent = decoded ? "as the model sees it" : `${state.size[0]}×${state.size[1]}`;
  original.hidden = false;
}

async function opened(response, name) {
  const held = await response.json();
  state.image = held.id;
  state.name = name;
  showError("");
  state.size = held.size;
  showOriginal();
  loadFaders(held);
  say(`Opened ${name}; the faders start where the classifier places it.${held.note ? ` ${held.note}` : ""}`);
  requestEdit();
}

async function openFile(file) {
  if (!file) return;
  const limit = state.model.limits.max_upload_bytes;
  if (file.size > limit) {
    showError(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB, over this server's limit of ` +
              `${(limit / 2 ** 20).toFixed(0)} MB; choose a smaller image`);
    return;
  }
  say(`Opening ${file.name}…`);
  try {
    const response = await api("/api/images", {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream", "X-Filename": encodeURIComponent(file.name) },
      body: file,
    });
    await opened(response, file.name);
    markOpenedTest(null);
  } catch (e) {
    showError(e.message);
    say("");
  }
}

// The test image the page holds, marked on its thumbnail (aria-pressed); null once a file is opened instead.
function markOpenedTest(index) {
  state.openedTest = index;
  for (const button of $("test-strip").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.index) === index));
  }
}

async function openTestImage(index, label) {
  try {
    const response = await api(`/api/test-images/${index}`, { method: "POST" });
    await opened(response, `test-${index}.png`);
    markOpenedTest(index);
    say(`Opened ${label}.`);
  } catch (e) {
    showError(e.message);
  }
}

async function loadTestImages() {
  let info;
  try {
    info = await (await api(`/api/test-images?offset=${state.testOffset}&limit=12`)).json();
  } catch (e) {
    return;
  }
  const note = $("tests-note");
  if (info.state === "loading") {
    note.textContent = "Reading the dataset's test images…";
    setTimeout(loadTestImages, 2000);
    return;
  }
  if (info.state !== "ready") {
    note.textContent = `No test images: ${info.reason}`;
    return;
  }
  note.textContent = `${info.count} test images; showing ${state.testOffset + 1}–${state.testOffset + info.items.length}.`;
  const strip = $("test-strip");
  strip.replaceChildren();
  for (const item of info.items) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-label", `Open ${item.label}`);
    button.setAttribute("aria-pressed", String(state.openedTest === item.index));
    button.dataset.index = String(item.index);
    button.title = item.label;
    const img = document.createElement("img");
    img.src = `/api/test-images/${item.index}.png`;
    img.alt = "";
    button.append(img);
    button.addEventListener("click", () => openTestImage(item.index, item.label));
    li.append(button);
    strip.append(li);
  }
  $("tests").hidden = false;
  $("more-tests").onclick = () => {
    state.testOffset = state.testOffset + 12 < info.count ? state.testOffset + 12 : 0;
    loadTestImages();
  };
}

function wireDrop() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => { openFile(e.target.files[0]); e.target.value = ""; });
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  document.addEventListener("dragleave", (e) => { if (e.relatedTarget === null) drop.classList.remove("over"); });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) openFile(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const file = [...e.clipboardData.files].find((f) => f.type.startsWith("image/"));
    if (file) openFile(file);
  });
}

async function main() {
  wireDrop();
  try {
    state.model = await (await api("/api/model")).json();
  } catch (e) {
    showError(e.message);
    return;
  }
  const m = state.model;
  $("model-info").textContent = `${m.checkpoint} · ${m.image_size} px · step ${m.step ?? "?"} · ` +
    `${m.attributes.length} attribute${m.attributes.length === 1 ? "" : "s"}` +
    (m.has_classifier ? "" : " · no classifier: faders start at 0");
  $("limits").textContent = `up to ${(m.limits.max_upload_bytes / 2 ** 20).toFixed(0)} MB and ` +
    `${(m.limits.max_pixels / 1e6).toFixed(0)} megapixels; PNG, JPEG, WebP, GIF, BMP or TIFF`;
  if (!m.attributes.some((a) => a.binary)) {
    $("fader-help").textContent = "Pick a value; “classifier sees” names the one the model's classifier finds in " +
      "this image, and Reset goes back to it. Arrow keys move through the values.";
  }
  buildFaders(m);
  $("reset-all").addEventListener("click", () => {
    for (const attr of m.attributes) setValue(attr.name, roundValue(state.inferred[attr.name]), false);
    requestEdit();
    say("All faders reset to what the classifier sees.");
  });
  document.body.dataset.ready = "true";
  loadTestImages();
}

main();
