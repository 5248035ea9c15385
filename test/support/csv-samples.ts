// Sample CSV files whose expected rows are known without parsing them back.

export type Sample = { csv: string; header: string[]; rows: string[][] };

const quote = (value: string) => (/[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value);

/** Rows with what a loader must not damage: leading zeros, long digits, empty strings, quotes, commas and line breaks. */
export function sampleCsv(rowCount: number, seed = 1): Sample {
  const header = ["id", "zip", "account", "note", "empty", "city"];
  const rows: string[][] = [];
  for (let i = 1; i <= rowCount; i++) {
    rows.push([
      String(i),
      String((i * 7919 + seed) % 100000).padStart(5, "0"),
      `${"9".repeat(18)}${i}`,
      i % 5 === 0 ? `line one\nline "two", with comma ${i}` : `note ${i}, plain`,
      "",
      ["São Paulo", "Zürich", "Kraków", "東京"][i % 4] as string,
    ]);
  }
  const csv = `${[header, ...rows].map((r) => r.map(quote).join(",")).join("\r\n")}\r\n`;
  return { csv, header, rows };
}
