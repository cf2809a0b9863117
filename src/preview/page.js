"use strict";
// The review page's behaviour. Every value from the mailing goes into the page through textContent or an
// attribute set from script, never as markup; HTML parts only ever run inside a sandboxed iframe.
(() => {
  const ROW_HEIGHT = 28, OVERSCAN = 10;
  const $ = (id) => document.getElementById(id);
  const parse = (el) => JSON.parse(el.textContent);
  const job = parse($("job-data"));
  const summary = parse($("summary-data"));
  const detailEls = document.querySelectorAll("script.details");
  // rows[i] = [row, recipient, subject, size, warning codes, CSV fields, eml file or null (written by --eml)]
  const rows = [];
  const chunkStart = [];
  for (const el of document.querySelectorAll("script.rows")) {
    chunkStart.push(rows.length);
    for (const r of parse(el)) rows.push(r);
  }
  let view = rows.map((_, i) => i);
  let selected = -1; // a position in view
  let haystacks = null;

  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  const size = (n) => n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KB" : (n / 1048576).toFixed(1) + " MB";

  // --- the list: only the rows in sight are in the DOM ---
  const list = $("list"), spacer = $("spacer");
  function renderList() {
    spacer.style.height = view.length * ROW_HEIGHT + "px";
    const first = Math.max(0, Math.floor(list.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(view.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW_HEIGHT) + OVERSCAN);
    const frag = document.createDocumentFragment();
    for (let p = first; p < last; p++) {
      const r = rows[view[p]];
      const line = el("div", undefined, p === selected ? "row selected" : "row");
      line.style.top = p * ROW_HEIGHT + "px";
      line.dataset.pos = p;
      line.dataset.row = r[0];
      line.setAttribute("role", "option");
      line.append(el("span", String(r[0]), "n"), el("span", r[1], "to"), el("span", r[2], "subject"),
        el("span", size(r[3]), "size"), el("span", r[4].length ? "!" : "", "warn"));
      if (r[4].length) line.title = r[4].join(", ");
      frag.append(line);
    }
    spacer.replaceChildren(frag);
    $("count").textContent = view.length === rows.length
      ? rows.length + " messages" : view.length + " of " + rows.length + " messages";
  }
  list.addEventListener("scroll", () => requestAnimationFrame(renderList));
  window.addEventListener("resize", renderList);
  list.addEventListener("click", (e) => {
    const line = e.target.closest(".row");
    if (line) select(Number(line.dataset.pos));
  });

  // --- search and filter ---
  function haystack(i) {
    const r = rows[i];
    return [r[0], r[1], r[2], r[3], size(r[3]), r[4].join(" "), r[5].join("\n"), r[6]].join("\n").toLowerCase();
  }
  function applyFilter() {
    const terms = $("search").value.toLowerCase().split(/\s+/).filter(Boolean);
    const onlyWarnings = $("only-warnings").checked;
    if (terms.length && !haystacks) haystacks = rows.map((_, i) => haystack(i));
    const keep = (i) => (!onlyWarnings || rows[i][4].length > 0) && terms.every((t) => haystacks[i].includes(t));
    const current = selected >= 0 ? view[selected] : -1;
    view = [];
    for (let i = 0; i < rows.length; i++) if (keep(i)) view.push(i);
    selected = view.indexOf(current);
    list.scrollTop = selected >= 0 ? selected * ROW_HEIGHT - list.clientHeight / 2 : 0;
    renderList();
  }
  let timer = 0;
  $("search").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(applyFilter, 120); });
  $("only-warnings").addEventListener("change", applyFilter);

  // --- keyboard: j/k or arrows move, / searches, Escape leaves the search box ---
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const inSearch = e.target === $("search");
    if (inSearch && e.key === "Escape") { clearTimeout(timer); applyFilter(); $("search").blur(); list.focus(); return; }
    if (inSearch && e.key === "Enter") { clearTimeout(timer); applyFilter(); list.focus(); if (selected < 0) select(0); return; }
    const step = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 }[e.key];
    if (step && !(inSearch && (e.key === "j" || e.key === "k"))) {
      e.preventDefault();
      select(Math.min(view.length - 1, Math.max(0, selected + step)));
    } else if (e.key === "/" && !inSearch) {
      e.preventDefault();
      $("search").focus();
      $("search").select();
    }
  });

  // --- the selected message ---
  const cache = new Map();
  async function details(chunk) {
    if (!cache.has(chunk)) {
      const bytes = Uint8Array.from(atob(detailEls[chunk].textContent), (c) => c.charCodeAt(0));
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      cache.set(chunk, JSON.parse(await new Response(stream).text()));
      if (cache.size > 8) cache.delete(cache.keys().next().value);
    }
    return cache.get(chunk);
  }
  function chunkOf(i) {
    let c = chunkStart.length - 1;
    while (chunkStart[c] > i) c--;
    return c;
  }
  let shown = null;
  async function select(p) {
    if (p < 0 || p >= view.length) return;
    selected = p;
    const top = p * ROW_HEIGHT;
    if (top < list.scrollTop) list.scrollTop = top;
    else if (top + ROW_HEIGHT > list.scrollTop + list.clientHeight) list.scrollTop = top + ROW_HEIGHT - list.clientHeight;
    renderList();
    const i = view[p], c = chunkOf(i);
    const d = (await details(c))[i - chunkStart[c]];
    if (view[selected] === i) show(rows[i], d);
  }

  function show(r, d) {
    shown = d;
    $("summary").hidden = true;
    $("message").hidden = false;
    $("message").dataset.row = r[0];
    $("subject").textContent = r[2] || "(no subject)";
    const headers = $("headers");
    headers.replaceChildren();
    for (const [name, value] of headersOf(d.raw)) {
      const tr = el("tr");
      tr.append(el("th", name + ":"), el("td", value));
      headers.append(tr);
    }
    const envelope = el("tr");
    envelope.append(el("th", "Envelope recipients:"), el("td", d.envelope.join(", ")));
    headers.append(envelope);
    const fields = el("tr");
    fields.append(el("th", "CSV row " + r[0] + ":"), el("td", job.columns.map((c, k) => c + "=" + r[5][k]).join(", ")));
    headers.append(fields);
    const warnings = $("row-warnings");
    warnings.replaceChildren(...r[4].map((code) => el("li", job.meanings[code] || code)));
    $("text").textContent = d.text === null ? "This message has no text part." : d.text;
    $("source").textContent = d.raw;
    saveLink(r, d);
    $("attachments-tab").textContent = "Attachments (" + d.attachments.length + ")";
    const table = $("attachments");
    table.replaceChildren();
    if (!d.attachments.length) table.append(el("tr", "No attachments."));
    for (const a of d.attachments) {
      const link = el("a", a.name);
      link.href = a.file;
      const tr = el("tr");
      tr.append(el("td", undefined), el("td", a.mime), el("td", size(a.size)));
      tr.firstChild.append(link);
      table.append(tr);
    }
    showHtml();
  }

  // --- the headers, read from the message's own bytes as a mail client reads them ---
  // Unfolded (RFC 5322 §2.2.3), encoded words decoded (RFC 2047; adjacent ones of one charset joined before
  // decoding, the space between them dropped), MIME plumbing left out, what a reader looks at first first.
  const FIRST = ["from", "to", "cc", "reply-to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"];
  const HIDDEN = ["mime-version", "content-type", "content-transfer-encoding"];
  const ADDRESSES = ["from", "sender", "to", "cc", "reply-to"];
  function headersOf(raw) {
    const end = raw.search(/\r?\n\r?\n/);
    const section = (end < 0 ? raw : raw.slice(0, end)).replace(/\r?\n(?=[ \t])/g, "");
    const headers = [];
    for (const line of section.split(/\r?\n/)) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon);
      if (colon <= 0 || HIDDEN.includes(name.toLowerCase())) continue;
      let value = line.slice(colon + 1).trim();
      // A display name is shown without the quotes that protect it: "Support, EU" <s@x> → Support, EU <s@x>.
      if (ADDRESSES.includes(name.toLowerCase())) value = value.replace(/"((?:[^"\\]|\\.)*)"/g, (_, q) => q.replace(/\\(.)/g, "$1"));
      headers.push([name, decodeWords(value)]);
    }
    const rank = (name) => {
      const i = FIRST.indexOf(name.toLowerCase());
      return i < 0 ? FIRST.length : i;
    };
    return headers.sort((a, b) => rank(a[0]) - rank(b[0]));
  }
  const WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
  function decodeWords(value) {
    let out = "", last = 0, pending = null; // pending: { charset, bytes } of the words being joined
    const flush = () => {
      if (pending) out += charsetDecode(pending.charset, pending.bytes);
      pending = null;
    };
    for (const m of value.matchAll(WORD)) {
      const between = value.slice(last, m.index);
      last = m.index + m[0].length;
      if (!(pending && /^\s*$/.test(between))) {
        flush();
        out += between;
      }
      const charset = m[1].split("*")[0].toLowerCase(), bytes = wordBytes(m[2], m[3]);
      if (bytes === null) {
        flush();
        out += m[0];
      } else if (pending && pending.charset === charset) {
        pending.bytes.push(...bytes);
      } else {
        flush();
        pending = { charset, bytes: [...bytes] };
      }
    }
    flush();
    return out + value.slice(last);
  }
  function wordBytes(encoding, text) {
    try {
      const binary = encoding.toUpperCase() === "B" ? atob(text)
        : text.replace(/_/g, " ").replace(/=([0-9A-Fa-f]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
      return Array.from(binary, (c) => c.charCodeAt(0));
    } catch {
      return null;
    }
  }
  function charsetDecode(charset, bytes) {
    try {
      return new TextDecoder(charset).decode(new Uint8Array(bytes));
    } catch {
      return new TextDecoder("utf-8").decode(new Uint8Array(bytes));
    }
  }

  // The message as a file a mail client opens: the `.eml` that --eml wrote, or else the embedded source
  // (all of it, where it was not cut), as the UTF-8 bytes it was read from.
  function saveLink(r, d) {
    const save = $("save-eml");
    if (save.href.startsWith("blob:")) URL.revokeObjectURL(save.href);
    save.removeAttribute("href");
    save.hidden = !(r[6] || d.whole);
    if (save.hidden) return;
    save.download = r[6] || "row-" + String(r[0]).padStart(6, "0") + ".eml";
    save.href = r[6] || URL.createObjectURL(new Blob([d.raw], { type: "message/rfc822" }));
  }

  // Remote images stay blocked by a policy that the frame's own document carries, until the reader asks.
  const BLOCK = '<meta http-equiv="Content-Security-Policy" content="img-src data: cid:; media-src \'none\'; font-src \'none\'">';
  function showHtml() {
    const frame = $("html-frame");
    const html = shown && shown.html;
    $("no-html").hidden = html !== null;
    frame.hidden = html === null;
    frame.srcdoc = html === null ? "" : ($("load-images").checked ? "" : BLOCK) + '<base target="_blank">' + hintless(html);
  }

  // Resource hints (prefetch, preconnect …), refreshes and nested frames reach the network whatever the
  // Content-Security-Policy says (a frame's blocked load still opens a connection), and no mail client shows
  // them: they are taken out of the shown copy, parsed in an inert document, which fetches nothing.
  const HINTS = /^(prefetch|preload|modulepreload|preconnect|dns-prefetch|prerender|next)$/i;
  function hintless(html) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    const hints = [...doc.querySelectorAll("link[rel]")].filter((l) => l.rel.split(/\s+/).some((r) => HINTS.test(r)));
    const refreshes = [...doc.querySelectorAll("meta[http-equiv]")].filter((m) => /^refresh$/i.test(m.httpEquiv));
    const gone = hints.concat(refreshes, [...doc.querySelectorAll("iframe, frame")]);
    if (!gone.length) return html;
    gone.forEach((e) => e.remove());
    return doc.documentElement.outerHTML;
  }
  $("load-images").addEventListener("change", showHtml);

  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll(".tabs button")) {
        other.setAttribute("aria-selected", String(other === tab));
        $("pane-" + other.dataset.tab).hidden = other !== tab;
      }
    });
  }

  // --- the summary, shown first ---
  function jump(row) {
    $("search").value = "";
    $("only-warnings").checked = false;
    applyFilter();
    select(rows.findIndex((r) => r[0] === row));
  }
  function renderSummary() {
    const s = $("summary");
    const facts = el("table", undefined, "kv");
    const fact = (name, value) => {
      const tr = el("tr");
      tr.append(el("th", name), typeof value === "string" ? el("td", value) : value);
      facts.append(tr);
    };
    const link = (text, row) => {
      const td = el("td"), a = el("a", text, "jump");
      a.addEventListener("click", () => jump(row));
      td.append(a);
      return td;
    };
    fact("Job", job.job);
    fact("Campaign", job.campaign || "(none)");
    fact("Messages", String(summary.messages));
    fact("Rows not in the list", String(summary.skipped));
    fact("With warnings", String(summary.with_warnings));
    fact("Total size", size(summary.bytes));
    if (summary.largest) fact("Largest", link(size(summary.largest[1]) + " (row " + summary.largest[0] + ")", summary.largest[0]));
    s.replaceChildren(el("h2", "Summary"), facts, el("h2", "Warnings"));
    const ws = el("ul", undefined, "warnings");
    ws.id = "summary-warnings";
    for (const [code, [count, first]] of Object.entries(summary.warnings)) {
      const li = el("li", count + " × " + job.meanings[code] + " — first at ");
      const a = el("a", "row " + first, "jump");
      a.addEventListener("click", () => jump(first));
      li.dataset.code = code;
      li.append(a);
      ws.append(li);
    }
    if (!ws.children.length) ws.append(el("li", "None.", "muted"));
    s.append(ws);
    if (summary.listed_skipped.length) {
      const skipped = el("ul");
      skipped.id = "summary-skipped";
      for (const [, message] of summary.listed_skipped) skipped.append(el("li", message));
      s.append(el("h2", "Rows not in the list"), skipped);
    }
  }
  $("show-summary").addEventListener("click", () => {
    $("summary").hidden = false;
    $("message").hidden = true;
  });

  $("title").textContent = "Preview of " + job.job;
  renderSummary();
  renderList();
  list.focus();
})();
