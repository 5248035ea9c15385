// Why an upload is rejected as a whole, and where in the file it happened. What a client is
// answered for each code is decided at the HTTP edge, not here.

export const CSV_FORMAT_ERROR_CODES = [
  "EmptyFile",
  "NotCsv",
  "InvalidEncoding",
  "UnterminatedQuote",
  "InvalidHeader",
  "TooManyColumns",
  "HeaderTooLarge",
  "NoDataRows",
  /** The header lacks columns the upload's target requires. */
  "MissingColumns",
  /** The header names columns the upload's target neither maps nor ignores. */
  "UnmappedColumns",
] as const;

export type CsvFormatErrorCode = (typeof CSV_FORMAT_ERROR_CODES)[number];

/** `line` and `column` are 1-based (column in UTF-16 code units); `byte` is a 0-based offset in the file. */
export type CsvFormatErrorDetails = {
  line?: number;
  column?: number;
  byte?: number;
  names?: string[];
};

export class CsvFormatError extends Error {
  override name = "CsvFormatError";
  readonly code: CsvFormatErrorCode;
  readonly details: CsvFormatErrorDetails;

  constructor(code: CsvFormatErrorCode, message: string, details: CsvFormatErrorDetails = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
}
