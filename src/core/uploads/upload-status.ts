// An upload's status, as the uploads table keeps it and every answer and event names it. It
// imports nothing, so that the web page's types can name it without the database's.
export type UploadStatus =
  | "received"
  | "validating"
  | "queued"
  | "processing"
  | "completed"
  | "rejected"
  | "failed"
  | "cancelled";
