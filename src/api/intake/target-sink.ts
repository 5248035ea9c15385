// An upload into a target: its header is checked against the target's mapping as soon as it
// is read (a file lacking required columns is refused before its body is stored), and a row
// whose value does not convert is kept out as a row error with its line, column and reason.
// Uploads without a target never pass here.
import type { TargetSnapshot } from "../../core/targets/target-definition.ts";
import { type HeaderPlan, planHeader } from "../../core/targets/target-values.ts";
import { CsvFormatError, type CsvSink } from "./csv/csv-reader.ts";

const shownNames = (names: string[]) =>
  names.map((name) => (name.length > 40 ? `${name.slice(0, 40)}…` : name));

/** The sink, and how many rows it kept out, which the reader counted as good. */
export function targetSink(
  sink: CsvSink,
  target: TargetSnapshot,
  recordLine: () => number,
): { sink: CsvSink; rejected: () => number } {
  let plan: HeaderPlan | undefined;
  let rejected = 0;
  const checked: CsvSink = {
    header(header) {
      const planned = planHeader(target, header.columns);
      if (planned.missing.length > 0) {
        throw new CsvFormatError(
          "MissingColumns",
          `The header lacks ${planned.missing.length === 1 ? "the column" : "the columns"} ${planned.missing.map((n) => JSON.stringify(n)).join(", ")} that target ${target.name} requires.`,
          { line: recordLine(), names: shownNames(planned.missing) },
        );
      }
      if (planned.unmapped.length > 0) {
        throw new CsvFormatError(
          "UnmappedColumns",
          `Target ${target.name} neither maps nor ignores ${planned.unmapped.map((n) => JSON.stringify(n)).join(", ")}; add ${planned.unmapped.length === 1 ? "it" : "them"} to its columns or ignore, or set ignoreOthers.`,
          { line: recordLine(), names: shownNames(planned.unmapped) },
        );
      }
      plan = planned;
      sink.header(header);
    },
    row(row, values) {
      const problem = plan?.check(values);
      if (problem === undefined) {
        // Its line, should the worker find its key taken.
        sink.row(row, values, recordLine());
        return;
      }
      rejected++;
      sink.rowError({
        row,
        line: recordLine(),
        code: problem.code,
        message: problem.message,
        raw: "",
      });
    },
    rowError: (error) => sink.rowError(error),
  };
  return { sink: checked, rejected: () => rejected };
}
