// Why an upload is rejected as a whole, with the HTTP status it maps to and where in the file it happened.

export type CsvFormatErrorCode =
  | "EmptyFile"
  | "NotCsv"
  | "InvalidEncoding"
  | "UnterminatedQuote"
  | "InvalidHeader"
  | "TooManyColumns"
  | "HeaderTooLarge"
  | "NoDataRows"
  /** The header lacks columns the upload's target requires. */
  | "MissingColumns"
  /** The header names columns the upload's target neither maps nor ignores. */
  | "UnmappedColumns";

export type CsvFormatErrorStatus = 400 | 415 | 422;

/** `line` and `column` are 1-based (column in UTF-16 code units); `byte` is a 0-based offset in the file. */
export type CsvFormatErrorDetails = {
  line?: number;
  column?: number;
  byte?: number;
  names?: string[];
};

const STATUS: Record<CsvFormatErrorCode, CsvFormatErrorStatus> = {
  EmptyFile: 400,
  NotCsv: 415,
  InvalidEncoding: 422,
  UnterminatedQuote: 422,
  InvalidHeader: 422,
  TooManyColumns: 422,
  HeaderTooLarge: 422,
  NoDataRows: 422,
  MissingColumns: 422,
  UnmappedColumns: 422,
};

export class CsvFormatError extends Error {
  override name = "CsvFormatError";
  readonly code: CsvFormatErrorCode;
  readonly status: CsvFormatErrorStatus;
  readonly details: CsvFormatErrorDetails;

  constructor(code: CsvFormatErrorCode, message: string, details: CsvFormatErrorDetails = {}) {
    super(message);
    this.code = code;
    this.status = STATUS[code];
    this.details = details;
  }
}
