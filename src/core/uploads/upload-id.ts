// Upload ids are UUIDs as PostgreSQL writes them: lower-case hexadecimal, with hyphens.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `value` can be an upload id: anything else is no upload, and is not looked up. */
export const isUploadId = (value: string): boolean => UUID.test(value);
