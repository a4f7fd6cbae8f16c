// Facetory web panel: plain JavaScript over the daemon's local API, no build step, nothing external.
// Authentication is the HttpOnly session cookie set by the one-time ?token= link, so every request
// is a same-origin fetch with credentials "same-origin"; changes go out as PUT/POST/DELETE with JSON
// or multipart bodies, which the server's Origin and Sec-Fetch-Site checks accept from its own pages.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // ---- the look format (facetory_cam/looks/schema.py): which parameters each layer shows --------
  const UNIT = { min: 0, max: 1, step: 0.01, pct: true };
  const LAYERS = [
    ["foundation", "Foundation", [["tone", "color", "Tone"], ["coverage", UNIT, "Coverage"]]],
    ["skin_smoothing", "Skin smoothing", [["strength", UNIT, "Strength"]]],
    ["contour", "Contour and highlight", [
      ["contour_color", "color", "Contour colour"], ["highlight_color", "color", "Highlight colour"],
      ["contour", UNIT, "Contour"], ["highlight", UNIT, "Highlight"]]],
    ["blush", "Blush", [
      ["color", "color", "Colour"], ["opacity", UNIT, "Opacity"],
      ["size", { min: 0.5, max: 1.6, step: 0.01 }, "Size"], ["lift", { min: -1, max: 1, step: 0.01 }, "Lift"]]],
    ["eyeshadow", "Eyeshadow", [
      ["color", "color", "Lid colour"], ["crease_color", "color", "Crease colour"],
      ["opacity", UNIT, "Opacity"], ["extent", UNIT, "Extent"]]],
    ["eyeliner", "Eyeliner", [
      ["color", "color", "Colour"], ["opacity", UNIT, "Opacity"],
      ["thickness", { min: 0, max: 0.04, step: 0.001 }, "Thickness"],
      ["wing_length", { min: 0, max: 0.15, step: 0.005 }, "Wing length"],
      ["wing_angle", { min: -10, max: 60, step: 1, unit: "°" }, "Wing angle"]]],
    ["mascara", "Mascara", [["color", "color", "Colour"], ["opacity", UNIT, "Opacity"]]],
    ["brows", "Brows", [["color", "color", "Colour"], ["opacity", UNIT, "Opacity"], ["fill", UNIT, "Fill"]]],
    ["lipstick", "Lipstick", [
      ["color", "color", "Colour"], ["opacity", UNIT, "Opacity"],
      ["finish", ["matte", "satin", "gloss"], "Finish"], ["gloss", UNIT, "Gloss"]]],
    ["lip_liner", "Lip liner", [
      ["color", "color", "Colour"], ["opacity", UNIT, "Opacity"],
      ["thickness", { min: 0, max: 0.05, step: 0.001 }, "Thickness"]]],
    ["teeth_whitening", "Teeth whitening", [["strength", UNIT, "Strength"]]],
    ["iris", "Iris colour", [
      ["color", "color", "Colour"], ["opacity", UNIT, "Opacity"], ["keep_limbal_ring", "bool", "Keep the limbal ring"]]],
    ["texture", "Painted texture", [["blend", ["normal", "multiply", "soft_light"], "Blend"]]],
  ];
  const LAYER_LABEL = Object.fromEntries(LAYERS.map(([k, label]) => [k, label]));
  LAYER_LABEL.background = "Background";
  const BACKGROUND = [
    ["mode", ["none", "blur", "color"], "Mode"], ["blur", UNIT, "Blur"],
    ["color", "color", "Colour"], ["edge", UNIT, "Edge softness"],
  ];

  // ---- everything the page knows; one object, owned by this closure ---------------------------
  const app = {
    state: null, // GET /api/state
    looks: [], // GET /api/looks
    selected: null, // LookDetail being edited
    draft: null, // its look document, edited in place by the controls
    activeLayers: null, // layer names present in the look on camera
    activeLayersOf: undefined,
    view: "after",
    loggedIn: false,
    snapshotUrl: null,
    facePhotoUrl: null,
    lastExtract: null,
    gridKey: "",
    forks: new Map(), // preset id -> the user's copy made by the first edit
    timers: {},
  };

  // ---- talking to the API ---------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function describe(detail, status) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => {
        const where = (d.loc || []).filter((p) => p !== "body").join(".");
        return where ? `${where}: ${d.msg}` : d.msg;
      }).join("; ");
    }
    return `the daemon answered HTTP ${status}`;
  }

  async function api(method, path, { json, form, as = "json" } = {}) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (form !== undefined) {
      init.body = form; // the browser writes the multipart boundary
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (err) {
      setConnection("down");
      throw new ApiError(0, "The daemon is not reachable: is facetory run still running?");
    }
    if (resp.status === 401) {
      showLogin(true);
      throw new ApiError(401, "Not logged in: open the one-time link that facetory run printed.");
    }
    if (!resp.ok) {
      let detail = null;
      try {
        detail = (await resp.json()).detail;
      } catch (err) {
        detail = null;
      }
      if (resp.status === 429) {
        throw new ApiError(429, `${describe(detail, 429)} (try again in a few seconds)`);
      }
      throw new ApiError(resp.status, describe(detail, resp.status));
    }
    setConnection("ok");
    if (as === "blob") return { blob: await resp.blob(), headers: resp.headers };
    if (resp.status === 204) return null;
    return resp.json();
  }

  // Requests that change things go out one after another, so a fast slider never reorders saves.
  let chain = Promise.resolve();
  function serial(fn) {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  }

  function debounce(key, ms, fn) {
    clearTimeout(app.timers[key]);
    app.timers[key] = setTimeout(() => {
      delete app.timers[key];
      fn();
    }, ms);
  }

  function flush(key, fn) {
    if (app.timers[key] !== undefined) {
      clearTimeout(app.timers[key]);
      delete app.timers[key];
      return fn();
    }
    return Promise.resolve();
  }

  // ---- messages -------------------------------------------------------------------------------
  function say(text) {
    const el = $("status");
    el.textContent = text;
    el.classList.add("shown");
    debounce("status-hide", 6000, () => el.classList.remove("shown"));
  }

  function fail(err) {
    const text = err instanceof ApiError || err instanceof Error ? err.message : String(err);
    $("error").hidden = false;
    $("error-text").textContent = text;
  }

  function clearError() {
    $("error").hidden = true;
    $("error-text").textContent = "";
  }

  async function attempt(fn) {
    try {
      const out = await fn();
      clearError();
      return out;
    } catch (err) {
      fail(err);
      return undefined;
    }
  }

  function setConnection(kind) {
    const el = $("connection");
    const text = { ok: "Connected", down: "Daemon unreachable", login: "Not logged in", wait: "Connecting…" }[kind];
    if (el.dataset.kind !== kind) {
      el.dataset.kind = kind;
      el.textContent = text;
    }
  }

  function showLogin(show) {
    $("login").hidden = !show;
    $("main").classList.toggle("locked", show);
    app.loggedIn = !show;
    if (show) setConnection("login");
  }

  const pct = (v) => `${Math.round(v * 100)} %`;
  const fmt = (v, spec) => (spec.pct ? pct(v) : `${Number(v).toFixed(spec.step < 0.01 ? 3 : 2)}${spec.unit || ""}`);

  // ---- live state -----------------------------------------------------------------------------
  function renderState() {
    const s = app.state;
    if (!s) return;
    const enabled = $("enabled");
    if (document.activeElement !== enabled) enabled.checked = s.enabled;
    $("active-name").textContent = s.look_name ? s.look_name : "no makeup";
    $("no-makeup").hidden = s.look === null;
    const gi = $("global-intensity");
    if (app.timers["state-intensity"] === undefined && document.activeElement !== gi) {
      gi.value = String(s.intensity);
      $("global-intensity-out").textContent = pct(s.intensity);
    }
    const active = app.looks.find((l) => l.id === s.look);
    const thumb = $("snapshot-thumb");
    thumb.disabled = !active || active.read_only;
    if (thumb.disabled) thumb.checked = false;
    renderStateLayers();
    renderGrid();
    renderEditorButtons();
  }

  async function loadActiveLayers() {
    const id = app.state ? app.state.look : null;
    if (id === app.activeLayersOf) return;
    app.activeLayersOf = id;
    if (id === null) {
      app.activeLayers = null;
    } else {
      const detail = await api("GET", `/api/looks/${encodeURIComponent(id)}`);
      app.activeLayers = presentLayers(detail.look);
    }
    renderStateLayers();
  }

  function presentLayers(look) {
    const names = LAYERS.map(([k]) => k).filter((k) => look.layers && look.layers[k]);
    if (look.background && look.background.mode !== "none") names.push("background");
    return names;
  }

  function renderStateLayers() {
    const box = $("state-layers");
    const list = $("state-layers-list");
    const names = app.activeLayers || [];
    box.hidden = names.length === 0;
    const key = names.join(",");
    if (list.dataset.key !== key) {
      list.dataset.key = key;
      list.replaceChildren(...names.map((name) => {
        const label = document.createElement("label");
        label.className = "check";
        const input = document.createElement("input");
        input.type = "checkbox";
        input.id = `state-layer-${name}`;
        input.dataset.layer = name;
        input.addEventListener("change", () => putState({ layers: { [name]: input.checked } }));
        const span = document.createElement("span");
        span.textContent = LAYER_LABEL[name] || name;
        label.htmlFor = input.id;
        label.append(input, span);
        return label;
      }));
    }
    if (app.state) {
      for (const input of list.querySelectorAll("input")) {
        if (document.activeElement !== input) input.checked = app.state.layers[input.dataset.layer] !== false;
      }
    }
  }

  async function refreshState() {
    app.state = await api("GET", "/api/state");
    showLogin(false);
    renderState();
    await loadActiveLayers();
  }

  function putState(change, message) {
    return attempt(() => serial(async () => {
      app.state = await api("PUT", "/api/state", { json: change });
      renderState();
      await loadActiveLayers();
      if (message) say(message);
    }));
  }

  // ---- preview --------------------------------------------------------------------------------
  function startPreview() {
    const img = $("preview");
    if (!app.loggedIn || document.hidden) {
      img.removeAttribute("src");
      return;
    }
    img.src = `/api/preview.mjpg?view=${encodeURIComponent(app.view)}&t=${Date.now()}`;
    img.alt = `Live preview of the camera (${app.view === "split" ? "before/after split" : app.view})`;
  }

  function setView(view) {
    app.view = view;
    for (const b of document.querySelectorAll("button[data-view]")) {
      b.setAttribute("aria-pressed", String(b.dataset.view === view));
    }
    startPreview();
  }

  // ---- snapshot -------------------------------------------------------------------------------
  async function takeSnapshot() {
    const body = {};
    const active = app.looks.find((l) => app.state && l.id === app.state.look);
    const asThumb = $("snapshot-thumb").checked && active && !active.read_only;
    if (asThumb) body.save_thumbnail_to = active.id;
    await attempt(async () => {
      const { blob } = await serial(() => api("POST", "/api/snapshot", { json: body, as: "blob" }));
      if (app.snapshotUrl) URL.revokeObjectURL(app.snapshotUrl);
      app.snapshotUrl = URL.createObjectURL(blob);
      const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
      $("snapshot-img").src = app.snapshotUrl;
      const link = $("snapshot-download");
      link.href = app.snapshotUrl;
      link.download = `facetory-snapshot-${stamp}.png`;
      $("snapshot-result").hidden = false;
      link.focus();
      say(asThumb ? `Snapshot taken; it is now the thumbnail of ${active.name}.` : "Snapshot taken.");
      if (asThumb) await loadLooks();
    });
  }

  // ---- library --------------------------------------------------------------------------------
  async function loadLooks() {
    app.looks = await api("GET", "/api/looks");
    renderGrid();
  }

  function thumbFor(look) {
    if (look.thumbnail_url) {
      const img = document.createElement("img");
      img.src = `${look.thumbnail_url}?v=${encodeURIComponent(look.updated || "")}`;
      img.alt = "";
      img.loading = "lazy";
      img.className = "thumb";
      return img;
    }
    const ph = document.createElement("span");
    ph.className = "thumb placeholder";
    ph.setAttribute("aria-hidden", "true");
    ph.textContent = (look.name || "?").trim().charAt(0).toUpperCase();
    return ph;
  }

  function renderGrid() {
    const grid = $("grid");
    const activeId = app.state ? app.state.look : null;
    const selectedId = app.selected ? app.selected.id : null;
    const key = JSON.stringify([activeId, selectedId, app.looks.map((l) => [l.id, l.name, l.updated, l.thumbnail_url])]);
    if (key === app.gridKey) return; // polls must not rebuild (and re-announce) an unchanged grid
    app.gridKey = key;
    const items = app.looks.map((look) => {
      const li = document.createElement("li");
      li.className = "look-card";
      li.dataset.id = look.id;
      if (look.id === activeId) li.classList.add("on-camera");
      const pick = document.createElement("button");
      pick.type = "button";
      pick.className = "pick";
      pick.setAttribute("aria-pressed", String(look.id === selectedId));
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = look.name;
      const meta = document.createElement("span");
      meta.className = "meta";
      const bits = [look.read_only ? "preset" : look.source];
      if (look.id === activeId) bits.push("on camera");
      if (look.problem) bits.push("unavailable");
      meta.textContent = bits.join(" · ");
      pick.append(thumbFor(look), name, meta);
      pick.addEventListener("click", () => attempt(() => selectLook(look.id)));
      const act = document.createElement("button");
      act.type = "button";
      act.className = "activate";
      act.textContent = look.id === activeId ? "On camera" : "Put on camera";
      act.disabled = look.id === activeId || Boolean(look.problem);
      act.setAttribute("aria-label", `Put ${look.name} on camera`);
      act.addEventListener("click", () => activate(look.id, look.name));
      li.append(pick, act);
      return li;
    });
    // Keep focus where it was when the grid is rebuilt by a poll.
    const focused = document.activeElement && grid.contains(document.activeElement)
      ? [document.activeElement.closest("li")?.dataset.id, document.activeElement.className] : null;
    grid.replaceChildren(...items);
    if (focused) {
      const li = [...grid.children].find((c) => c.dataset.id === focused[0]);
      const target = li && li.querySelector(`button.${focused[1].split(" ")[0]}`);
      if (target) target.focus();
    }
  }

  async function activate(id, name) {
    await flushSave();
    await putState({ look: id }, `${name} is on camera.`);
  }

  async function importBundle(file) {
    const form = new FormData();
    form.append("bundle", file, file.name);
    await attempt(async () => {
      const detail = await serial(() => api("POST", "/api/looks/import", { form }));
      await loadLooks();
      select(detail);
      say(`Imported ${detail.name}.`);
    });
  }

  // ---- photo to look --------------------------------------------------------------------------
  async function extract(file, face) {
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      fail(new Error(`${file.name}: choose a JPEG, PNG or WebP photo`));
      return;
    }
    const previous = face === undefined ? null : app.lastExtract;
    const form = new FormData();
    form.append("photo", file, file.name);
    if (face !== undefined) form.append("face", String(face));
    const zone = $("dropzone");
    zone.setAttribute("aria-busy", "true");
    say("Reading the look from the photo…");
    await attempt(async () => {
      try {
        const out = await serial(() => api("POST", "/api/looks/extract", { form }));
        app.lastExtract = out.look.id;
        showFaces(file, out.faces, out.face);
        await loadLooks();
        select(out.look);
        const found = presentLayers(out.look.look).map((k) => LAYER_LABEL[k]).join(", ") || "no layers";
        say(`New look ${out.look.name}${out.faces.length > 1 ? ` from face ${out.face + 1}` : ""}: ${found}.`);
        if (previous && previous !== out.look.id && (!app.state || app.state.look !== previous)) {
          // The user picked another face: the look read from the first one is replaced, not kept twice.
          await serial(() => api("DELETE", `/api/looks/${encodeURIComponent(previous)}`));
          await loadLooks();
        }
      } finally {
        zone.removeAttribute("aria-busy");
      }
    });
  }

  function showFaces(file, faces, chosen) {
    const box = $("faces");
    if (!faces || faces.length < 2) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const img = $("faces-img");
    if (app.facePhotoUrl) URL.revokeObjectURL(app.facePhotoUrl);
    app.facePhotoUrl = URL.createObjectURL(file);
    const boxes = $("faces-boxes");
    const buttons = $("faces-buttons");
    const place = () => {
      const w = img.naturalWidth || 1;
      const h = img.naturalHeight || 1;
      boxes.replaceChildren(...faces.map((f) => {
        const mark = document.createElement("span");
        mark.className = "face-box";
        mark.classList.toggle("chosen", f.index === chosen);
        mark.textContent = String(f.index + 1);
        mark.setAttribute("aria-hidden", "true");
        const [x0, y0, x1, y1] = f.box;
        mark.style.left = `${(100 * x0) / w}%`;
        mark.style.top = `${(100 * y0) / h}%`;
        mark.style.width = `${(100 * (x1 - x0)) / w}%`;
        mark.style.height = `${(100 * (y1 - y0)) / h}%`;
        return mark;
      }));
    };
    img.onload = place;
    img.src = app.facePhotoUrl;
    buttons.replaceChildren(...faces.map((f) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = `Face ${f.index + 1}`;
      b.setAttribute("aria-pressed", String(f.index === chosen));
      b.addEventListener("click", () => {
        if (f.index !== chosen) extract(file, f.index);
      });
      return b;
    }));
  }

  // ---- the editor -----------------------------------------------------------------------------
  async function selectLook(id) {
    await flushSave();
    const detail = await api("GET", `/api/looks/${encodeURIComponent(id)}`);
    select(detail);
  }

  function select(detail) {
    if (app.timers.save !== undefined) {
      clearTimeout(app.timers.save);
      delete app.timers.save;
      saveDraft(false); // captures the old look and its edits before the switch
    }
    app.selected = detail;
    app.draft = JSON.parse(JSON.stringify(detail.look));
    renderEditor();
    renderGrid();
  }

  function renderEditorButtons() {
    const sel = app.selected;
    if (!sel) return;
    const onCamera = app.state && app.state.look === sel.id;
    const act = $("activate");
    act.textContent = onCamera ? "On camera" : "Put on camera";
    act.disabled = Boolean(onCamera);
    $("delete").disabled = sel.read_only;
    $("save").textContent = sel.read_only ? "Save as a new look" : "Save";
  }

  function renderNote() {
    $("editor-note").textContent = app.selected && app.selected.read_only
      ? "This preset is read-only: the first change saves it as a new look of your own."
      : "Changes apply live (when the look is on camera) and are saved as you go.";
  }

  function renderEditor() {
    const sel = app.selected;
    $("editor").hidden = !sel;
    $("editor-empty").hidden = Boolean(sel);
    if (!sel) return;
    const d = app.draft;
    renderNote();
    $("look-name").value = d.name;
    $("look-intensity").value = String(d.intensity);
    $("look-intensity-out").textContent = pct(d.intensity);
    const layers = $("layers");
    const sets = LAYERS.filter(([k]) => d.layers && d.layers[k]).map(([k, label, params]) => layerFieldset(k, label, params));
    sets.push(backgroundFieldset());
    layers.replaceChildren(...sets);
    renderEditorButtons();
  }

  function control(idBase, name, kind, label, value, onValue) {
    const wrap = document.createElement("div");
    wrap.className = "field";
    const id = `${idBase}-${name}`;
    const lab = document.createElement("label");
    lab.htmlFor = id;
    lab.textContent = label;
    let input;
    if (kind === "color") {
      input = document.createElement("input");
      input.type = "color";
      input.value = value;
      input.addEventListener("input", () => onValue(input.value.toLowerCase()));
      wrap.append(lab, input);
    } else if (kind === "bool") {
      wrap.className = "field check";
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = Boolean(value);
      input.addEventListener("change", () => onValue(input.checked));
      wrap.append(input, lab);
    } else if (Array.isArray(kind)) {
      input = document.createElement("select");
      for (const opt of kind) {
        const o = document.createElement("option");
        o.value = opt;
        o.textContent = opt.replace("_", " ");
        input.append(o);
      }
      input.value = value;
      input.addEventListener("change", () => onValue(input.value));
      wrap.append(lab, input);
    } else {
      input = document.createElement("input");
      input.type = "range";
      input.min = String(kind.min);
      input.max = String(kind.max);
      input.step = String(kind.step);
      input.value = String(value);
      const out = document.createElement("output");
      out.htmlFor = id;
      out.setAttribute("aria-live", "off"); // the slider announces its own value (aria-valuetext)
      out.textContent = fmt(value, kind);
      input.setAttribute("aria-valuetext", out.textContent);
      input.addEventListener("input", () => {
        out.textContent = fmt(Number(input.value), kind);
        input.setAttribute("aria-valuetext", out.textContent);
        onValue(Number(input.value));
      });
      const slider = document.createElement("div");
      slider.className = "slider";
      slider.append(input, out);
      wrap.append(lab, slider);
    }
    input.id = id;
    input.dataset.param = name;
    return wrap;
  }

  function layerFieldset(key, label, params) {
    const fs = document.createElement("fieldset");
    fs.className = "layer";
    fs.dataset.layer = key;
    const legend = document.createElement("legend");
    legend.textContent = label;
    fs.append(legend);
    const layer = app.draft.layers[key];
    const set = (name, value) => {
      app.draft.layers[key] = { ...app.draft.layers[key], [name]: value };
      changed();
    };
    fs.append(control(`layer-${key}`, "enabled", "bool", "On", layer.enabled !== false, (v) => set("enabled", v)));
    fs.append(control(`layer-${key}`, "intensity", UNIT, "Intensity", layer.intensity ?? 1, (v) => set("intensity", v)));
    for (const [name, kind, text] of params) {
      if (layer[name] === undefined || layer[name] === null) continue; // e.g. a one-colour eyeshadow
      fs.append(control(`layer-${key}`, name, kind, text, layer[name], (v) => set(name, v)));
    }
    return fs;
  }

  function backgroundFieldset() {
    const fs = document.createElement("fieldset");
    fs.className = "layer";
    fs.dataset.layer = "background";
    const legend = document.createElement("legend");
    legend.textContent = "Background";
    fs.append(legend);
    const bg = app.draft.background || { mode: "none", blur: 0.6, color: "#2b2b2b", edge: 0.5 };
    for (const [name, kind, text] of BACKGROUND) {
      fs.append(control("background", name, kind, text, bg[name], (v) => {
        app.draft.background = { ...(app.draft.background || bg), [name]: v };
        changed();
      }));
    }
    return fs;
  }

  function changed() {
    debounce("save", 350, () => saveDraft(false));
  }

  function flushSave() {
    return flush("save", () => saveDraft(false));
  }

  async function textureDataUri(url) {
    const { blob } = await api("GET", url, { as: "blob" });
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(new Error("could not read the texture"));
      reader.readAsDataURL(blob);
    });
  }

  // Save the draft: PUT for the user's own looks (an active one updates live), POST a copy of a preset.
  // The look and its document are taken now; the request waits its turn in the serial chain.
  function saveDraft(explicit) {
    const sel = app.selected;
    if (!sel) return Promise.resolve();
    const doc = JSON.parse(JSON.stringify(app.draft));
    return attempt(() => serial(async () => {
      doc.name = doc.name.trim();
      if (!doc.name) throw new Error("A look needs a name.");
      const target = sel.read_only && app.forks.has(sel.id) ? app.forks.get(sel.id) : sel;
      let detail;
      if (target.read_only) {
        if (doc.name === target.name) doc.name = `${target.name} (mine)`.slice(0, 80);
        doc.provenance = { source: "manual" };
        doc.created = null;
        if (doc.layers.texture && target.texture_url) doc.layers.texture.image = await textureDataUri(target.texture_url);
        detail = await api("POST", "/api/looks", { json: doc });
        app.forks.set(target.id, detail);
        app.state = await api("GET", "/api/state"); // fresh: the tray may have switched looks meanwhile
        if (app.state.look === target.id) {
          app.state = await api("PUT", "/api/state", { json: { look: detail.id } });
        }
        say(`Presets are read-only: your changes are saved as a new look, ${detail.name}.`);
      } else {
        if (doc.layers.texture) doc.layers.texture.image = "texture.png"; // keep the stored texture
        if (target !== sel && doc.name === sel.name) doc.name = target.name; // queued before the copy was named
        detail = await api("PUT", `/api/looks/${encodeURIComponent(target.id)}`, { json: doc });
        say(explicit ? `Saved ${detail.name}.` : `Saved: ${detail.name} updated.`);
      }
      if (app.selected && (app.selected.id === sel.id || app.selected.id === detail.id)) {
        // Still on screen: point the editor at the saved look without rebuilding the controls under the pointer.
        app.selected = detail;
        app.draft.name = app.timers.save === undefined ? detail.look.name : app.draft.name;
        app.draft.provenance = detail.look.provenance;
        if (app.draft.layers.texture && detail.look.layers.texture) app.draft.layers.texture.image = "texture.png";
        if (document.activeElement !== $("look-name")) $("look-name").value = app.draft.name;
        renderEditorButtons();
        renderNote();
      }
      await loadLooks();
      app.activeLayersOf = undefined;
      await loadActiveLayers();
      renderState();
    }));
  }

  async function exportLook() {
    const sel = app.selected;
    if (!sel) return;
    await attempt(async () => {
      await flushSave();
      const { blob, headers } = await api("GET", `/api/looks/${encodeURIComponent(app.selected.id)}/export`, { as: "blob" });
      const m = /filename="([^"]+)"/.exec(headers.get("Content-Disposition") || "");
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = m ? m[1] : "look.facetory";
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      say(`Exported ${app.selected.name} as ${a.download}.`);
    });
  }

  async function deleteLook() {
    const sel = app.selected;
    if (!sel || sel.read_only) return;
    if (!window.confirm(`Delete the look “${sel.name}”? This cannot be undone.`)) return;
    clearTimeout(app.timers.save);
    delete app.timers.save;
    await attempt(async () => {
      await serial(() => api("DELETE", `/api/looks/${encodeURIComponent(sel.id)}`));
      app.selected = null;
      app.draft = null;
      renderEditor();
      await loadLooks();
      say(`Deleted ${sel.name}.`);
      $("grid").querySelector("button")?.focus();
    });
  }

  // ---- statistics -----------------------------------------------------------------------------
  async function refreshStats() {
    const s = await api("GET", "/api/stats");
    const fps = s.output_fps ? Object.values(s.output_fps)[0] : null;
    const lat = s.latency && s.latency.p50_ms;
    const bits = [];
    if (typeof fps === "number") bits.push(`${fps.toFixed(0)} fps`);
    if (typeof lat === "number") bits.push(`latency ${lat.toFixed(0)} ms`);
    $("stats").textContent = bits.join(" · ");
  }

  // ---- wiring ---------------------------------------------------------------------------------
  function wire() {
    for (const b of document.querySelectorAll("button[data-view]")) {
      b.addEventListener("click", () => setView(b.dataset.view));
    }
    $("enabled").addEventListener("change", (e) => {
      const on = e.target.checked;
      putState({ enabled: on }, on ? "Makeup filter on." : "Makeup filter off: the camera passes through.");
    });
    $("no-makeup").addEventListener("click", () => putState({ look: null }, "No makeup on camera."));
    const gi = $("global-intensity");
    gi.addEventListener("input", () => {
      $("global-intensity-out").textContent = pct(Number(gi.value));
      debounce("state-intensity", 150, () => putState({ intensity: Number(gi.value) }));
    });
    $("snapshot").addEventListener("click", takeSnapshot);
    $("photo").addEventListener("change", (e) => {
      const file = e.target.files && e.target.files[0];
      if (file) extract(file);
      e.target.value = "";
    });
    const zone = $("dropzone");
    zone.addEventListener("dragover", (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      const file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) extract(file);
    });
    // A photo dropped next to the zone must not navigate away from the panel.
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
    $("import").addEventListener("change", (e) => {
      const file = e.target.files && e.target.files[0];
      if (file) importBundle(file);
      e.target.value = "";
    });
    $("look-name").addEventListener("input", (e) => {
      if (app.draft) app.draft.name = e.target.value;
    });
    $("look-name").addEventListener("change", () => changed());
    $("look-intensity").addEventListener("input", (e) => {
      app.draft.intensity = Number(e.target.value);
      $("look-intensity-out").textContent = pct(app.draft.intensity);
      changed();
    });
    $("editor").addEventListener("submit", (e) => {
      e.preventDefault();
      clearTimeout(app.timers.save);
      delete app.timers.save;
      saveDraft(true);
    });
    $("activate").addEventListener("click", () => app.selected && activate(app.selected.id, app.draft.name));
    $("export").addEventListener("click", exportLook);
    $("delete").addEventListener("click", deleteLook);
    $("error-close").addEventListener("click", clearError);
    $("login-retry").addEventListener("click", () => start());
    const img = $("preview");
    img.addEventListener("load", () => {
      $("preview-empty").hidden = true;
    });
    img.addEventListener("error", () => {
      if (!img.getAttribute("src")) return;
      const empty = $("preview-empty");
      empty.textContent = img.naturalWidth > 0
        ? "The preview was interrupted: reconnecting…"
        : "No preview yet: waiting for the camera…";
      empty.hidden = false;
      debounce("preview-retry", 3000, startPreview);
    });
    document.addEventListener("visibilitychange", () => {
      startPreview();
      if (!document.hidden) poll();
    });
  }

  async function poll() {
    if (!app.loggedIn || document.hidden) return;
    try {
      await refreshState();
      await refreshStats();
      const before = JSON.stringify(app.looks.map((l) => [l.id, l.updated, l.name, l.thumbnail_url]));
      const looks = await api("GET", "/api/looks");
      if (JSON.stringify(looks.map((l) => [l.id, l.updated, l.name, l.thumbnail_url])) !== before) {
        app.looks = looks;
        renderGrid();
      }
    } catch (err) {
      if (err.status !== 401) setConnection("down");
    }
  }

  async function start() {
    try {
      await refreshState();
      await loadLooks();
      renderState();
      await refreshStats();
      clearError();
    } catch (err) {
      if (err.status !== 401) fail(err);
      return;
    }
    if (document.readyState === "complete") startPreview();
    else window.addEventListener("load", startPreview, { once: true }); // an endless stream would hold "load"
  }

  wire();
  setInterval(poll, 4000);
  start();
})();
