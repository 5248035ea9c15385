// The page's behaviour: the key, the file, the upload's bytes, its rows landing live, the
// rejected rows, and the tenant's uploads.
import {
  ApiError,
  cancelUpload,
  FINAL,
  firstRowErrors,
  followProgress,
  listTargets,
  listUploads,
  type ProgressEvent,
  rowErrorsFile,
  type Sending,
  sendFile,
  type Target,
  type Upload,
} from "./api.ts";
import * as format from "./format.ts";

const KEY_STORAGE = "sluice.apiKey";
/** Rows of the rejected-rows table; the download has them all. */
const ERRORS_SHOWN = 100;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const ui = {
  keyForm: element<HTMLFormElement>("key-form"),
  key: element<HTMLInputElement>("api-key"),
  forgetKey: element<HTMLButtonElement>("forget-key"),
  keyStatus: element("key-status"),
  uploadForm: element<HTMLFormElement>("upload-form"),
  dropZone: element("drop-zone"),
  file: element<HTMLInputElement>("file"),
  chosen: element("chosen"),
  target: element<HTMLSelectElement>("target"),
  targetsError: element("targets-error"),
  uploadButton: element<HTMLButtonElement>("upload-button"),
  current: element("current"),
  currentHeading: element("current-heading"),
  currentStatus: element("current-status"),
  currentId: element("current-id"),
  currentTarget: element("current-target"),
  bytesProgress: element<HTMLProgressElement>("bytes-progress"),
  bytesText: element("bytes-text"),
  rowsProgress: element<HTMLProgressElement>("rows-progress"),
  rowsText: element("rows-text"),
  batchesText: element("batches-text"),
  timeLeft: element("time-left"),
  announce: element("announce"),
  currentError: element("current-error"),
  cancel: element<HTMLButtonElement>("cancel"),
  errorsPanel: element("errors-panel"),
  errorsSummary: element("errors-summary"),
  downloadErrors: element<HTMLButtonElement>("download-errors"),
  errorsBody: element<HTMLTableElement>("errors-table").tBodies[0] as HTMLTableSectionElement,
  refresh: element<HTMLButtonElement>("refresh"),
  listError: element("list-error"),
  uploadsBody: element<HTMLTableElement>("uploads-table").tBodies[0] as HTMLTableSectionElement,
  listEmpty: element("list-empty"),
  more: element<HTMLButtonElement>("more"),
};

let chosen: File | undefined;
/** The upload shown in the panel: its body still being sent, or its id once accepted. */
let current: { sending?: Sending; id?: string; watch?: AbortController; status?: string } = {};
let lastAnnounced = "";
let nextPage: string | null = null;

const key = () => sessionStorage.getItem(KEY_STORAGE) ?? "";

const messageOf = (err: unknown) =>
  err instanceof ApiError
    ? `${err.message} (${err.code})`
    : err instanceof Error
      ? err.message
      : String(err);

function announce(text: string) {
  if (text === lastAnnounced) return;
  lastAnnounced = text;
  ui.announce.textContent = text;
}

// The key.

ui.key.value = key();
ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const value = ui.key.value.trim();
  if (value === "") sessionStorage.removeItem(KEY_STORAGE);
  else sessionStorage.setItem(KEY_STORAGE, value);
  ui.keyStatus.textContent = value === "" ? "No key: requests go without one." : "Key in use.";
  void refreshList();
  void refreshTargets();
});
ui.forgetKey.addEventListener("click", () => {
  sessionStorage.removeItem(KEY_STORAGE);
  ui.key.value = "";
  ui.keyStatus.textContent = "Key forgotten.";
  ui.uploadsBody.replaceChildren();
  showTargets([]);
});

// Where the rows land: JSON rows (the first option, always there) or one of the tenant's targets.

function showTargets(targets: Target[]) {
  const chosenTarget = ui.target.value;
  const options = targets.map((target) => {
    const option = document.createElement("option");
    option.value = target.name;
    option.textContent = `${target.name}: table ${target.schema}.${target.table}, ${target.mode}`;
    return option;
  });
  ui.target.replaceChildren(ui.target.options[0] as HTMLOptionElement, ...options);
  // A target that is gone falls back to JSON rows rather than to another target.
  ui.target.value = targets.some((t) => t.name === chosenTarget) ? chosenTarget : "";
}

async function refreshTargets() {
  ui.targetsError.textContent = "";
  try {
    showTargets((await listTargets(key())).items);
  } catch (err) {
    showTargets([]);
    ui.targetsError.textContent = `Your targets could not be listed: ${messageOf(err)}`;
  }
}

// The file: chosen or dropped.

function choose(file: File | undefined) {
  chosen = file;
  ui.chosen.textContent = file ? `${file.name}, ${format.bytes(file.size)}` : "";
  ui.uploadButton.disabled = !file || current.sending !== undefined;
}

ui.file.addEventListener("change", () => choose(ui.file.files?.[0]));
ui.dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  ui.dropZone.classList.add("over");
});
ui.dropZone.addEventListener("dragleave", () => ui.dropZone.classList.remove("over"));
ui.dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  ui.dropZone.classList.remove("over");
  const file = event.dataTransfer?.files[0];
  if (file) choose(file);
});

// The upload panel.

function showStatus(status: string) {
  ui.currentStatus.textContent = status;
  ui.currentStatus.className = `status status-${status}`;
  const unfinished = !FINAL.has(status as Upload["status"]) && status !== "not sent";
  ui.cancel.hidden = !unfinished;
  ui.cancel.disabled = false;
  if (current.status !== status) {
    current.status = status;
    announce(`Upload ${status}.`);
  }
}

function openPanel(title: string) {
  current.watch?.abort();
  current.sending?.abort();
  current = {};
  ui.uploadButton.disabled = !chosen;
  lastAnnounced = "";
  ui.current.hidden = false;
  ui.currentHeading.textContent = title;
  ui.currentId.textContent = "";
  ui.currentTarget.textContent = "";
  ui.bytesProgress.value = 0;
  ui.bytesText.textContent = "";
  ui.rowsProgress.value = 0;
  ui.rowsText.textContent = "";
  ui.batchesText.textContent = "";
  ui.timeLeft.textContent = "";
  ui.currentError.textContent = "";
  ui.errorsPanel.hidden = true;
  ui.errorsBody.replaceChildren();
}

function showBytes(sent: number, total: number) {
  ui.bytesProgress.max = Math.max(total, 1);
  ui.bytesProgress.value = Math.min(sent, total);
  const percent = total > 0 ? Math.floor((100 * sent) / total) : 100;
  ui.bytesText.textContent = `${format.bytes(sent)} of ${format.bytes(total)} sent (${percent}%)`;
}

function showProgress(progress: ProgressEvent) {
  showStatus(progress.status);
  const { landed, total } = progress.batches;
  // Batches, not rows: rejected rows never land, yet their batch does.
  ui.rowsProgress.max = Math.max(total ?? 1, 1);
  ui.rowsProgress.value = total === null ? 0 : landed;
  const rows = progress.rows === null ? "" : ` of ${format.count(progress.rows)}`;
  const rejected =
    progress.rowErrors > 0 ? `, ${format.count(progress.rowErrors)} rows rejected` : "";
  ui.rowsText.textContent = `${format.count(progress.rowsLanded)}${rows} rows landed${rejected}`;
  ui.batchesText.textContent =
    total === null ? "" : `Batches: ${format.count(landed)} of ${format.count(total)} landed`;
  if (progress.status === "completed") ui.timeLeft.textContent = "Done.";
  else if (FINAL.has(progress.status)) ui.timeLeft.textContent = "";
  else if (progress.stalled) ui.timeLeft.textContent = "No progress for a while; still waiting.";
  else if (progress.secondsLeft === null) ui.timeLeft.textContent = "Estimating the time left…";
  else ui.timeLeft.textContent = `About ${format.duration(progress.secondsLeft)} left`;
  if (total && !FINAL.has(progress.status)) {
    const quarter = Math.floor((4 * landed) / total) * 25;
    if (quarter > 0) announce(`${quarter}% of the batches landed.`);
  }
  if (FINAL.has(progress.status)) {
    announce(`Upload ${progress.status}: ${ui.rowsText.textContent}.`);
  }
}

async function watch(id: string) {
  const controller = new AbortController();
  current.watch = controller;
  try {
    const final = await followProgress(key(), id, showProgress, controller.signal);
    showProgress(final);
    if (final.rowErrors > 0) await showRowErrors(id, final.rowErrors);
  } catch (err) {
    if (!controller.signal.aborted) ui.currentError.textContent = messageOf(err);
  } finally {
    if (!controller.signal.aborted) void refreshList();
  }
}

async function showRowErrors(id: string, total: number) {
  const errors = await firstRowErrors(key(), id, ERRORS_SHOWN);
  const rows = errors.map((e) => {
    const tr = document.createElement("tr");
    for (const value of [e.row, e.line, e.code, e.message]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.append(td);
    }
    return tr;
  });
  ui.errorsBody.replaceChildren(...rows);
  ui.errorsSummary.textContent =
    total > errors.length
      ? `${format.count(total)} rows were rejected; the first ${errors.length} are below.`
      : `${format.count(total)} ${total === 1 ? "row was" : "rows were"} rejected.`;
  ui.errorsPanel.hidden = false;
}

ui.downloadErrors.addEventListener("click", async () => {
  const id = current.id;
  if (!id) return;
  ui.downloadErrors.disabled = true;
  try {
    const url = URL.createObjectURL(await rowErrorsFile(key(), id));
    const link = document.createElement("a");
    link.href = url;
    link.download = `${id}-errors.csv`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    ui.currentError.textContent = messageOf(err);
  } finally {
    ui.downloadErrors.disabled = false;
  }
});

/** Where the shown upload's rows land: the target chosen while it is sent, then the version it keeps. */
function showTarget(target: { name: string; version?: number } | null) {
  const version = target?.version === undefined ? "" : ` (version ${target.version})`;
  ui.currentTarget.textContent =
    target === null ? "Into JSON rows" : `Into target ${target.name}${version}`;
}

ui.uploadForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = chosen;
  if (!file) return;
  const target = ui.target.value;
  openPanel(file.name);
  showTarget(target === "" ? null : { name: target });
  showStatus("sending");
  showBytes(0, file.size);
  const sending = sendFile(key(), file, target, showBytes);
  current.sending = sending;
  // One body at a time: a second would abort this one by taking its panel.
  ui.uploadButton.disabled = true;
  try {
    const upload = await sending.done;
    if (current.sending !== sending) return;
    current.sending = undefined;
    ui.uploadButton.disabled = !chosen;
    current.id = upload.id;
    ui.currentId.textContent = `id ${upload.id}`;
    showTarget(upload.target);
    showBytes(file.size, file.size);
    showStatus(upload.status);
    void refreshList();
    await watch(upload.id);
  } catch (err) {
    if (current.sending !== sending) return;
    current.sending = undefined;
    ui.uploadButton.disabled = !chosen;
    showStatus("not sent");
    ui.currentError.textContent = messageOf(err);
    // The target went since the list was read: the list follows.
    if (err instanceof ApiError && err.code === "UnknownTarget") void refreshTargets();
  }
});

ui.cancel.addEventListener("click", async () => {
  if (current.sending) {
    current.sending.abort();
    return;
  }
  const id = current.id;
  if (id) await cancel(id);
});

async function cancel(id: string) {
  ui.cancel.disabled = true;
  try {
    const upload = await cancelUpload(key(), id);
    if (current.id === id) showStatus(upload.status);
  } catch (err) {
    const target = current.id === id ? ui.currentError : ui.listError;
    target.textContent = messageOf(err);
  } finally {
    ui.cancel.disabled = false;
    void refreshList();
  }
}

async function show(upload: Upload) {
  openPanel(upload.filename ?? "Upload");
  current.id = upload.id;
  ui.currentId.textContent = `id ${upload.id}`;
  showTarget(upload.target);
  showBytes(upload.bytes, upload.bytes);
  showStatus(upload.status);
  ui.current.scrollIntoView({ block: "start" });
  await watch(upload.id);
}

// The tenant's uploads, newest first.

function uploadRow(upload: Upload): HTMLTableRowElement {
  const tr = document.createElement("tr");
  const goesTo =
    upload.target === null
      ? "JSON rows"
      : `${upload.target.name} (version ${upload.target.version})`;
  const file = document.createElement("td");
  file.className = "file";
  const fileInto = document.createElement("span");
  fileInto.className = "file-into";
  fileInto.textContent = `into ${goesTo}`;
  file.append(upload.filename ?? "(no name)", fileInto);
  const into = document.createElement("td");
  into.className = "into";
  into.textContent = goesTo;
  const status = document.createElement("td");
  status.className = `status status-${upload.status}`;
  status.textContent = upload.status;
  const landed = document.createElement("td");
  landed.textContent =
    upload.rows === null
      ? format.count(upload.rowsLanded)
      : `${format.count(upload.rowsLanded)} of ${format.count(upload.rows)}`;
  const started = document.createElement("td");
  started.textContent = format.when(upload.createdAt);
  const actions = document.createElement("td");
  const name = upload.filename ?? upload.id;
  const open = document.createElement("button");
  open.type = "button";
  open.className = "small";
  open.textContent = "Show";
  open.setAttribute("aria-label", `Show ${name}`);
  open.addEventListener("click", () => void show(upload));
  actions.append(open);
  if (!FINAL.has(upload.status)) {
    const stop = document.createElement("button");
    stop.type = "button";
    stop.className = "small";
    stop.textContent = "Cancel";
    stop.setAttribute("aria-label", `Cancel ${name}`);
    stop.addEventListener("click", () => void cancel(upload.id));
    actions.append(" ", stop);
  }
  tr.append(file, into, status, landed, started, actions);
  return tr;
}

async function refreshList(more = false) {
  ui.listError.textContent = "";
  try {
    const page = await listUploads(key(), more ? (nextPage ?? undefined) : undefined);
    const rows = page.items.map(uploadRow);
    if (more) ui.uploadsBody.append(...rows);
    else ui.uploadsBody.replaceChildren(...rows);
    nextPage = page.next;
    ui.more.hidden = nextPage === null;
    ui.listEmpty.hidden = ui.uploadsBody.rows.length > 0;
  } catch (err) {
    ui.listError.textContent = messageOf(err);
  }
}

ui.refresh.addEventListener("click", () => void refreshList());
ui.more.addEventListener("click", () => void refreshList(true));

// Without a key the api would only answer 401; it may have no keys, which "Use key" tells.
if (key() !== "") {
  void refreshList();
  void refreshTargets();
} else ui.keyStatus.textContent = "Enter your API key to see your uploads.";
