// Whether every test file's results reached the runner. Each test file runs in a process of
// its own, which sends every result to the runner and, last, its own count of the tests it
// ran (a test:summary naming the file). The runner's totals count only what arrived: results
// lost on the way would otherwise pass unnoticed, with `fail 0` and exit code 0.
import type { TestEvent } from "node:test/reporters";

type Counts = { tests: number; suites: number };

/** What arrived from one test file, and what its process said it ran. */
type Tally = { arrived: Counts; counted?: Counts };

/** The test files of the run and what arrived from each, filled in as events pass. */
export type Tallies = Map<string, Tally>;

function tallyOf(tallies: Tallies, file: string): Tally {
  let tally = tallies.get(file);
  if (!tally) {
    tally = { arrived: { tests: 0, suites: 0 } };
    tallies.set(file, tally);
  }
  return tally;
}

/** Events relayed from a test file's process carry entryFile; the runner's own do not. */
const entryFileOf = (data: object) => (data as { entryFile?: string }).entryFile;

export function observe(event: TestEvent, tallies: Tallies): void {
  const { type, data } = event;
  if (!data || !("file" in data) || typeof data.file !== "string") return;
  const entryFile = entryFileOf(data);
  if (entryFile === undefined) {
    // The runner queues each file as a test of its own, before its process starts.
    if (type === "test:enqueue" && data.nesting === 0) tallyOf(tallies, data.file);
    return;
  }
  if (type === "test:pass" || type === "test:fail") {
    const { arrived } = tallyOf(tallies, entryFile);
    if (event.data.details.type === "suite") arrived.suites++;
    else arrived.tests++;
  } else if (type === "test:summary") {
    const { tests, suites } = event.data.counts;
    tallyOf(tallies, entryFile).counted = { tests, suites };
  }
}

/** One line per test file whose results did not all arrive; none when all did. */
export function missing(tallies: Tallies, root = process.cwd()): string[] {
  const problems: string[] = [];
  for (const [file, { arrived, counted }] of [...tallies].sort(([a], [b]) => a.localeCompare(b))) {
    const name = file.startsWith(`${root}/`) ? file.slice(root.length + 1) : file;
    if (!counted) {
      problems.push(
        `${name}: its process's own count never arrived (${arrived.tests} test results did)`,
      );
    } else if (counted.tests !== arrived.tests || counted.suites !== arrived.suites) {
      problems.push(
        `${name}: ran ${counted.tests} tests in ${counted.suites} suites; results of ${arrived.tests} tests in ${arrived.suites} suites arrived`,
      );
    }
  }
  return problems;
}
