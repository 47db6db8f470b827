// A unit's report to the national programme (/program/report?request=&unit=): a province's
// reporter writes it section by section (texts, indicator values), saves drafts and submits
// it; a coordinator accepts it or returns it with comments, and the reporter corrects it.
// The request (its template's sections and due date) comes from /program/requests/{key},
// the report from /program/reports/{key}/{unit}, who is signed in from /auth/me. The
// server decides: what it refuses (incomplete, not editable, another unit's) is shown as
// it says it. Vietnamese first, English on the button.
"use strict";

const TZ = "Asia/Ho_Chi_Minh";
const EDITABLE = ["draft", "returned"];

const TEXT = {
  vi: {
    title: "Báo cáo của đơn vị — Chương trình đô thị thông minh",
    back: "← Bảng theo dõi toàn quốc", request: "Yêu cầu báo cáo", unit: "Đơn vị",
    signOut: "Đăng xuất", signIn: "Đăng nhập",
    signInNote: "Bạn chưa đăng nhập: có thể xem báo cáo, nhưng cần đăng nhập để soạn, nộp hoặc thẩm định.",
    otherUnit: "Tài khoản của bạn báo cáo cho đơn vị {0}, không phải {1}: máy chủ sẽ không nhận thay đổi của bạn cho đơn vị này.",
    notAsked: "Yêu cầu này không yêu cầu đơn vị {0} báo cáo.",
    noRequests: "Chưa có yêu cầu báo cáo nào.",
    period: "Kỳ báo cáo", due: "Hạn nộp", dueIn: "còn {0} ngày", dueToday: "đến hạn hôm nay",
    duePassed: "đã quá hạn {0} ngày", status: "Trạng thái", version: "Phiên bản",
    submittedAt: "Ngày nộp", late: "Nộp trễ {0} ngày", onTime: "Đúng hạn",
    st_none: "Chưa có báo cáo", st_draft: "Đang soạn", st_submitted: "Đã nộp",
    st_returned: "Trả lại để chỉnh sửa", st_accepted: "Đã chấp nhận",
    commentsReturned: "Ý kiến của cơ quan điều phối — cần chỉnh sửa:",
    commentsAccepted: "Ý kiến thẩm định:",
    required: "bắt buộc", optional: "không bắt buộc", minLength: "tối thiểu {0} ký tự",
    count: "{0} ký tự", countOf: "{0} / {1} ký tự",
    code: "Mã", indicator: "Chỉ số", measure: "Đơn vị tính", value: "Giá trị",
    nameLater: "(tên chỉ số hiện sau khi lưu)",
    tasksNote: "Phần này do nền tảng tự điền khi nộp: các nhiệm vụ của đơn vị trong chương trình và tiến độ của chúng. Không cần nhập.",
    tasksAsOf: "Các nhiệm vụ của đơn vị, theo lần nộp gần nhất ({0}):",
    noTasks: "Đơn vị không có nhiệm vụ nào trong chương trình khi nộp.",
    task: "Nhiệm vụ", deadline: "Thời hạn", taskStatus: "Tình trạng", progress: "Tiến độ", flag: "Cảnh báo",
    ts_notStarted: "Chưa bắt đầu", ts_inProgress: "Đang thực hiện", ts_done: "Hoàn thành", ts_cancelled: "Đã hủy",
    fl_overdue: "Quá hạn", fl_atRisk: "Có nguy cơ chậm", fl_onTrack: "Đúng tiến độ", fl_done: "Hoàn thành",
    fl_cancelled: "Đã hủy", fl_unclear: "Chưa rõ 6 rõ",
    save: "Lưu bản nháp", submit: "Nộp báo cáo",
    missingTitle: "Kiểm tra trước khi nộp — còn thiếu:", complete: "Đã đủ các mục bắt buộc, có thể nộp.",
    missText: "{0}: cần ít nhất {1} ký tự (hiện có {2})",
    missIndicators: "Chỉ số bắt buộc chưa có giá trị: {0}",
    locked: "Báo cáo đã {0}: chỉ xem, không sửa được.",
    readOnlyAnon: "Chỉ xem: đăng nhập để soạn báo cáo.",
    notNumber: "Giá trị không phải là số: {0}",
    saved: "Đã lưu bản nháp (phiên bản {0}).", submitted: "Đã nộp báo cáo (phiên bản {0}).",
    accepted: "Đã chấp nhận báo cáo.", returned: "Đã trả lại báo cáo để đơn vị chỉnh sửa.",
    refused: "Máy chủ từ chối — {0}",
    reviewTitle: "Thẩm định báo cáo",
    reviewComments: "Ý kiến của cơ quan điều phối (bắt buộc khi trả lại)",
    accept: "Chấp nhận", return: "Trả lại để chỉnh sửa",
    needComments: "Hãy ghi ý kiến: cần sửa gì trước khi trả lại báo cáo.",
    log: "Lịch sử phiên bản", action: "Thao tác", by: "Người thực hiện", at: "Thời điểm",
    noLog: "Chưa có phiên bản nào.",
    ac_edit: "Lưu bản nháp", ac_submit: "Nộp", ac_accept: "Chấp nhận", ac_return: "Trả lại",
  },
  en: {
    title: "A unit's report — Smart city programme",
    back: "← National dashboard", request: "Report request", unit: "Unit",
    signOut: "Sign out", signIn: "Sign in",
    signInNote: "You are not signed in: you may read the report, but sign in to write, submit or review it.",
    otherUnit: "Your account reports for unit {0}, not {1}: the server will not take your changes for this unit.",
    notAsked: "This request does not ask unit {0} for a report.",
    noRequests: "No report requests yet.",
    period: "Period", due: "Due", dueIn: "{0} days left", dueToday: "due today",
    duePassed: "overdue by {0} days", status: "Status", version: "Version",
    submittedAt: "Submitted", late: "Submitted {0} days late", onTime: "On time",
    st_none: "Not started", st_draft: "Draft", st_submitted: "Submitted",
    st_returned: "Returned for correction", st_accepted: "Accepted",
    commentsReturned: "The coordinator's comments — to correct:",
    commentsAccepted: "The reviewer's comments:",
    required: "required", optional: "optional", minLength: "at least {0} characters",
    count: "{0} characters", countOf: "{0} / {1} characters",
    code: "Code", indicator: "Indicator", measure: "Unit", value: "Value",
    nameLater: "(the indicator's name shows once saved)",
    tasksNote: "Filled in by the platform at submission: the unit's programme tasks and their progress. Nothing to type.",
    tasksAsOf: "The unit's tasks, as of the last submission ({0}):",
    noTasks: "The unit had no programme tasks when it submitted.",
    task: "Task", deadline: "Deadline", taskStatus: "Status", progress: "Progress", flag: "Flag",
    ts_notStarted: "Not started", ts_inProgress: "In progress", ts_done: "Done", ts_cancelled: "Cancelled",
    fl_overdue: "Overdue", fl_atRisk: "At risk", fl_onTrack: "On track", fl_done: "Done",
    fl_cancelled: "Cancelled", fl_unclear: "Not clear (6 rõ)",
    save: "Save draft", submit: "Submit the report",
    missingTitle: "Check before submitting — still missing:", complete: "Every required part is filled in: ready to submit.",
    missText: "{0}: needs at least {1} characters (has {2})",
    missIndicators: "Required indicators without a value: {0}",
    locked: "The report is {0}: read only.",
    readOnlyAnon: "Read only: sign in to write the report.",
    notNumber: "Not a number: {0}",
    saved: "Draft saved (version {0}).", submitted: "Report submitted (version {0}).",
    accepted: "The report is accepted.", returned: "The report is returned to the unit for correction.",
    refused: "The server refused — {0}",
    reviewTitle: "Review the report",
    reviewComments: "The coordinator's comments (needed to return it)",
    accept: "Accept", return: "Return for correction",
    needComments: "Write what to correct before returning the report.",
    log: "Version history", action: "Action", by: "By", at: "When",
    noLog: "No versions yet.",
    ac_edit: "Draft saved", ac_submit: "Submitted", ac_accept: "Accepted", ac_return: "Returned",
  },
};

const state = {
  lang: params.get("lang") || localStorage.getItem("dothi.lang") || "vi",
  key: params.get("request") || "", unit: params.get("unit") || "",
  // Whether the unit was given (or chosen): a default one stays out of the address, so
  // that signing in from here comes back to the signed-in person's own unit.
  unitGiven: params.has("unit"),
  me: null, requests: [], request: null, rows: [], report: null, names: {},
  draft: {sections: {}, indicators: {}},
};
const ready = readiness("reportReady");

function t(key, ...args) {
  const text = (TEXT[state.lang] || TEXT.vi)[key] ?? TEXT.vi[key] ?? key;
  return args.reduce((s, a, i) => s.replace(`{${i}}`, a), text);
}

function number(value) {
  return new Intl.NumberFormat(state.lang === "en" ? "en-GB" : "vi-VN",
                               {maximumFractionDigits: 2}).format(value);
}

// Today in Vietnam, as YYYY-MM-DD (the due day ends at midnight there).
function today() {
  return new Intl.DateTimeFormat("en-CA", {timeZone: TZ}).format(new Date());
}

function daysFrom(a, b) {
  return Math.round((Date.parse(b) - Date.parse(a)) / 86400000);
}

// Characters as the server counts them (code points of the trimmed text).
function length(text) { return [...(text || "").trim()].length; }

function enc(s) { return encodeURIComponent(s); }
function may(action) { return !!(state.me && state.me.may && state.me.may.includes(action)); }
function identified() { return !!(state.me && state.me.identified); }
function status() { return state.report ? state.report.status : "none"; }
function sections(kind) {
  const all = state.request ? state.request.templateSections.sections : [];
  return kind ? all.filter(s => s.kind === kind) : all;
}
function asked() { return !!state.request && state.request.units.includes(state.unit); }
function unitName(code) {
  const row = state.rows.find(r => r.unit === code);
  return row && row.name && row.name !== code ? `${row.name} (${code})` : code;
}

// Whether the person may change the report as it stands (the server still decides whose).
function editable() {
  return identified() && may("programme") && asked()
    && (!state.report || EDITABLE.includes(state.report.status));
}

function reportPath(suffix) {
  return `/program/reports/${enc(state.key)}/${enc(state.unit)}${suffix || ""}`;
}

// -- the draft being typed ------------------------------------------------------------

// The form's values start as the report holds them, and follow what is typed.
function adopt(report) {
  state.report = report;
  const texts = (report && report.sections) || {};
  const values = (report && report.indicators) || {};
  state.draft = {
    sections: Object.fromEntries(sections("text").map(s => [s.key, texts[s.key] || ""])),
    indicators: Object.fromEntries(sections("indicators").flatMap(s => s.indicators).map(
      code => [code, values[code] ? String(values[code].value) : ""])),
  };
}

// What the local check finds missing, in words (the server's answer is the authority).
function missing() {
  const out = [];
  for (const s of sections("text")) {
    const n = length(state.draft.sections[s.key]);
    if (s.required && n < (s.minLength || 1)) out.push(t("missText", pick(s.title, state.lang), s.minLength || 1, n));
  }
  for (const s of sections("indicators")) {
    const empty = (s.requiredIndicators || []).filter(c => (state.draft.indicators[c] || "").trim() === "");
    if (empty.length) out.push(t("missIndicators", empty.join(", ")));
  }
  return out;
}

// The body of PUT /program/reports/{key}/{unit}: every text, and the values filled in.
function body() {
  const bad = [...document.querySelectorAll("[data-testid=value]")]
    .filter(input => input.validity.badInput).map(input => input.dataset.code);
  if (bad.length) throw new Error(t("notNumber", bad.join(", ")));
  const indicators = {};
  const saved = (state.report && state.report.indicators) || {};
  for (const [code, text] of Object.entries(state.draft.indicators)) {
    if (text.trim() !== "") indicators[code] = Number(text);
    else if (code in saved) indicators[code] = null;  // a saved value, taken back
  }
  return {sections: {...state.draft.sections}, indicators};
}

// -- drawing --------------------------------------------------------------------------

function renderWho() {
  const who = document.getElementById("who");
  const me = state.me;
  const next = `/auth/login?next=${enc(location.pathname + location.search)}`;
  if (!identified()) {
    who.replaceChildren(el("a", {href: next, "data-testid": "signin-link-header"}, t("signIn")));
  } else {
    const agency = me.agency ? ` · ${unitName(me.agency)}` : "";
    who.replaceChildren(`${pick(me.title, state.lang)} · ${me.subject.replace(/^user:/, "")}${agency} · `,
                        el("a", {href: "/auth/logout", "data-testid": "sign-out"}, t("signOut")));
  }
  const note = document.getElementById("signin");
  const notes = [];
  if (!identified()) {
    notes.push(el("p", {}, t("signInNote"), " ", el("a", {href: next, "data-testid": "signin-link"}, t("signIn"))));
  } else if (me.agency && me.agency !== state.unit && !may("coordinate")) {
    notes.push(el("p", {"data-testid": "other-unit"}, t("otherUnit", unitName(me.agency), unitName(state.unit))));
  }
  if (state.request && !asked()) notes.push(el("p", {"data-testid": "not-asked"}, t("notAsked", state.unit)));
  note.replaceChildren(...notes);
  note.hidden = !notes.length;
}

function renderControls() {
  const requests = document.getElementById("request");
  requests.replaceChildren(...state.requests.map(r => el("option", {value: r.key},
    `${pick(r.title, state.lang)} — ${r.period} (${r.key})`)));
  if (!state.requests.length) requests.append(el("option", {value: ""}, t("noRequests")));
  requests.disabled = !state.requests.length;
  requests.value = state.key;
  const units = document.getElementById("unit");
  const codes = state.request ? [...state.request.units] : [];
  if (state.unit && !codes.includes(state.unit)) codes.push(state.unit);
  units.replaceChildren(...codes.map(c => el("option", {value: c}, unitName(c))));
  units.value = state.unit;
  const back = document.getElementById("back");
  const query = new URLSearchParams();
  if (state.key) query.set("request", state.key);
  if (state.unit) query.set("unit", state.unit);
  if (TENANT) query.set("tenant", TENANT);
  back.href = `/program/dashboard?${query}`;
}

function field(label, value, attrs) {
  return el("div", Object.assign({class: "field"}, attrs || {}),
            el("span", {class: "k"}, label), el("span", {class: "v"}, value));
}

function renderSummary() {
  const box = document.getElementById("summary");
  const req = state.request;
  if (!req) { box.replaceChildren(); return; }
  const now = today(), left = daysFrom(now, req.dueDate);
  const dueNote = left > 0 ? t("dueIn", left) : left === 0 ? t("dueToday") : t("duePassed", -left);
  const report = state.report;
  const st = status();
  const fields = [
    field(t("period"), req.period),
    field(t("due"), `${dayText(req.dueDate)} — ${dueNote}`,
          {"data-testid": "due", "data-passed": String(left < 0), class: "field" + (left < 0 ? " alarm" : "")}),
    field(t("status"), el("span", {class: `badge st-${st}`, "data-testid": "status", "data-status": st}, t("st_" + st))),
  ];
  if (report) {
    fields.push(field(t("version"), String(report.version), {"data-testid": "version"}));
    if (report.submittedAt) {
      fields.push(field(t("submittedAt"), `${momentText(report.submittedAt)} — ${report.late ? t("late", report.lateDays) : t("onTime")}`,
                        {"data-testid": "submitted-at", class: "field" + (report.late ? " alarm" : "")}));
    }
  }
  box.replaceChildren(el("h2", {"data-testid": "request-title"}, pick(req.title, state.lang),
                         el("span", {class: "muted"}, ` · ${unitName(state.unit)}`)),
                      el("div", {class: "fields"}, fields));
}

function renderComments() {
  const box = document.getElementById("comments");
  const report = state.report;
  const shown = report && (report.comments || "").trim() && ["returned", "accepted"].includes(report.status);
  box.hidden = !shown;
  box.className = "comments" + (shown && report.status === "accepted" ? " ok" : "");
  if (!shown) { box.replaceChildren(); return; }
  box.replaceChildren(el("strong", {}, t(report.status === "returned" ? "commentsReturned" : "commentsAccepted")),
                      el("p", {"data-testid": "comments-text"}, report.comments));
}

function requiredMark(required) {
  return required ? el("span", {class: "req", title: t("required")}, `* ${t("required")}`)
                  : el("span", {class: "opt"}, t("optional"));
}

function countText(s) {
  const n = length(state.draft.sections[s.key]);
  return s.required && s.minLength ? t("countOf", n, s.minLength) : t("count", n);
}

function countClass(s) {
  const n = length(state.draft.sections[s.key]);
  return "count" + (s.required && n < (s.minLength || 1) ? " short" : s.required ? " ok" : "");
}

function textSection(s) {
  const id = `text-${s.key}`;
  const count = el("div", {class: countClass(s), "data-testid": "count", "data-key": s.key}, countText(s));
  const area = el("textarea", {id, rows: s.required ? 6 : 4, "data-testid": "text", "data-key": s.key,
                               "aria-required": String(!!s.required),
                               oninput: e => {
                                 state.draft.sections[s.key] = e.target.value;
                                 count.textContent = countText(s);
                                 count.className = countClass(s);
                                 renderChecklist();
                               }});
  area.value = state.draft.sections[s.key] || "";
  return el("fieldset", {class: "section", "data-section": s.key, "data-kind": "text"},
    el("legend", {}, el("label", {for: id}, pick(s.title, state.lang)), " ", requiredMark(s.required),
       s.required && s.minLength ? el("span", {class: "hint"}, ` · ${t("minLength", s.minLength)}`) : null),
    area, count);
}

function indicatorName(code) {
  const saved = state.report && state.report.indicators && state.report.indicators[code];
  const known = state.names[code];
  if (known) return {name: state.lang === "vi" && known.nameVi ? known.nameVi : known.name, unit: known.unit};
  if (saved) return {name: saved.name, unit: saved.unit};
  return null;
}

function indicatorsSection(s) {
  const required = new Set(s.requiredIndicators || []);
  const rows = s.indicators.map(code => {
    const named = indicatorName(code);
    const input = el("input", {type: "number", step: "any", inputmode: "decimal", "data-testid": "value",
                               "data-code": code, "aria-label": code, "aria-required": String(required.has(code)),
                               oninput: e => {
                                 state.draft.indicators[code] = e.target.value;
                                 renderChecklist();
                               }});
    input.value = state.draft.indicators[code] || "";
    return el("tr", {"data-testid": "indicator", "data-code": code, class: required.has(code) ? "required" : ""},
      el("td", {class: "code"}, code),
      el("td", {}, named ? named.name : el("span", {class: "muted"}, t("nameLater")),
         required.has(code) ? el("span", {class: "req"}, ` * ${t("required")}`) : null),
      el("td", {class: "unit", "data-testid": "measure"}, named ? named.unit : ""),
      el("td", {}, input));
  });
  return el("fieldset", {class: "section", "data-section": s.key, "data-kind": "indicators"},
    el("legend", {}, pick(s.title, state.lang), " ", requiredMark(required.size > 0)),
    el("div", {class: "scroll"}, el("table", {class: "indicators"},
       el("thead", {}, el("tr", {}, el("th", {}, t("code")), el("th", {}, t("indicator")),
                          el("th", {}, t("measure")), el("th", {}, t("value")))),
       el("tbody", {}, rows))));
}

function tasksSection(s) {
  const report = state.report;
  const parts = [el("p", {class: "muted"}, t("tasksNote"))];
  if (report && Array.isArray(report.tasks)) {
    if (!report.tasks.length) parts.push(el("p", {"data-testid": "no-tasks"}, t("noTasks")));
    else {
      parts.push(el("p", {}, t("tasksAsOf", momentText(report.submittedAt))));
      parts.push(el("div", {class: "scroll"}, el("table", {class: "tasks", "data-testid": "tasks"},
        el("thead", {}, el("tr", {}, ...["code", "task", "deadline", "taskStatus", "progress", "flag"].map(k => el("th", {}, t(k))))),
        el("tbody", {}, report.tasks.map(task => el("tr", {"data-testid": "task", "data-code": task.code},
          el("td", {class: "code"}, task.code), el("td", {}, pick(task.name, state.lang)),
          el("td", {class: "num"}, dayText(task.deadline)),
          el("td", {}, task.status ? t("ts_" + task.status) : ""),
          el("td", {class: "num"}, task.progress === null || task.progress === undefined ? "—" : `${number(task.progress)}%`),
          el("td", {}, task.flag ? el("span", {class: `flag fl-${task.flag}`}, t("fl_" + task.flag)) : "")))))));
    }
  }
  return el("fieldset", {class: "section", "data-section": s.key, "data-kind": "tasks"},
            el("legend", {}, pick(s.title, state.lang)), ...parts);
}

function renderForm() {
  const form = document.getElementById("form");
  const all = el("fieldset", {class: "all", "data-testid": "fields"}, sections().map(s =>
    s.kind === "text" ? textSection(s) : s.kind === "indicators" ? indicatorsSection(s) : tasksSection(s)));
  all.disabled = !editable();
  form.replaceChildren(all);
  form.classList.toggle("readonly", !editable());
}

function renderChecklist() {
  const box = document.getElementById("checklist");
  const st = status();
  if (state.request && ["submitted", "accepted"].includes(st)) {
    box.replaceChildren(el("p", {class: "locked", "data-testid": "locked"}, t("locked", t("st_" + st).toLowerCase())));
  } else if (!identified() && state.request) {
    box.replaceChildren(el("p", {class: "locked"}, t("readOnlyAnon")));
  } else if (editable()) {
    const lacks = missing();
    box.dataset.complete = String(!lacks.length);
    box.replaceChildren(lacks.length
      ? el("div", {class: "missing"}, el("strong", {}, t("missingTitle")),
           el("ul", {"data-testid": "missing"}, lacks.map(m => el("li", {}, m))))
      : el("p", {class: "complete"}, t("complete")));
  } else {
    box.replaceChildren();
  }
  const buttons = document.querySelector("#actions .buttons");
  buttons.hidden = !state.request || ["submitted", "accepted"].includes(st);
  for (const id of ["save", "submit"]) document.getElementById(id).disabled = !editable();
}

function renderReview() {
  const box = document.getElementById("review");
  box.hidden = !(may("coordinate") && status() === "submitted");
}

function renderLog() {
  const body = document.querySelector("#log tbody");
  const log = (state.report && state.report.log) || [];
  if (!log.length) {
    body.replaceChildren(el("tr", {}, el("td", {colspan: 4, class: "muted"}, t("noLog"))));
    return;
  }
  body.replaceChildren(...[...log].reverse().map(entry => el("tr", {"data-testid": "log-entry", "data-action": entry.action},
    el("td", {class: "num"}, String(entry.version)), el("td", {}, t("ac_" + entry.action)),
    el("td", {}, entry.by), el("td", {class: "num"}, momentText(entry.at)))));
}

function render() {
  translatePage(state.lang, t);
  document.title = `${t("title")} — dothi`;
  renderWho();
  renderControls();
  renderSummary();
  renderComments();
  renderForm();
  renderChecklist();
  renderReview();
  renderLog();
}

// -- talking to the server ------------------------------------------------------------

function show(kind, message) {
  const problem = document.getElementById("problem"), notice = document.getElementById("notice");
  problem.hidden = kind !== "problem";
  notice.hidden = kind !== "notice";
  if (kind === "problem") problem.textContent = message;
  if (kind === "notice") notice.textContent = message;
}

// Runs an action; what the server (or the local check) refuses is shown as it says it.
async function guarded(work) {
  try {
    const message = await work();
    show(message ? "notice" : null, message);
  } catch (exc) {
    const message = String(exc.message || exc);
    show("problem", /^\d{3}: /.test(message) ? t("refused", message) : message);
  }
  render();
}

function remember() {
  const url = new URL(location.href);
  if (state.key) url.searchParams.set("request", state.key); else url.searchParams.delete("request");
  if (state.unit && state.unitGiven) url.searchParams.set("unit", state.unit);
  else url.searchParams.delete("unit");
  history.replaceState(null, "", url);
}

async function load() {
  state.request = null;
  state.report = null;
  state.rows = [];
  if (!state.key) { adopt(null); return; }
  const k = enc(state.key);
  [state.request, state.rows] = await Promise.all([
    api(`/program/requests/${k}`), api(`/program/requests/${k}/status`)]);
  if (!state.unit) {
    const own = state.me && state.me.agency;
    state.unit = own && state.request.units.includes(own) ? own : state.request.units[0] || "";
  }
  remember();
  const row = state.rows.find(r => r.unit === state.unit);
  const report = row && row.status !== "missing" ? await api(reportPath()) : null;
  // The indicators' names (Vietnamese too) and units, as the template gives them.
  state.names = Object.fromEntries(state.request.templateSections.sections
    .flatMap(section => section.indicatorDetails || []).map(i => [i.code, i]));
  adopt(report);
}

async function save() {
  adopt(await api(reportPath(), {method: "PUT", headers: {"Content-Type": "application/json"},
                                 body: JSON.stringify(body())}));
  return t("saved", state.report.version);
}

async function submit() {
  await save();
  adopt(await api(reportPath("/submit"), {method: "POST"}));
  return t("submitted", state.report.version);
}

async function review(decision) {
  const comments = document.getElementById("review-comments").value.trim();
  if (decision === "return" && !comments) throw new Error(t("needComments"));
  const sent = {decision};
  if (comments) sent.comments = comments;
  adopt(await api(reportPath("/review"), {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify(sent)}));
  document.getElementById("review-comments").value = "";
  return t(decision === "accept" ? "accepted" : "returned");
}

async function start() {
  document.getElementById("lang").addEventListener("click", () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    localStorage.setItem("dothi.lang", state.lang);
    render();
  });
  const act = work => () => ready(guarded(work));
  document.getElementById("save").addEventListener("click", act(save));
  document.getElementById("submit").addEventListener("click", act(submit));
  document.getElementById("accept").addEventListener("click", act(() => review("accept")));
  document.getElementById("return").addEventListener("click", act(() => review("return")));
  document.getElementById("request").addEventListener("change", e => {
    state.key = e.target.value;
    state.unit = "";
    state.unitGiven = false;
    ready(guarded(async () => { await load(); }));
  });
  document.getElementById("unit").addEventListener("change", e => {
    state.unit = e.target.value;
    state.unitGiven = true;
    ready(guarded(async () => { await load(); }));
  });
  [state.me, state.requests] = await Promise.all([api("/auth/me"), api("/program/requests")]);
  if (!state.key && state.requests.length) state.key = state.requests[0].key;
  await load();
}

window.programmeReport = {state, missing};
ready(guarded(async () => { await start(); }));
