// An S3-compatible server as a process of its own, so a test can stop and restart it:
// node test/support/s3-server.ts <port> <directory>
import { createLogger } from "../../src/core/logger.ts";
import { startLocalS3 } from "../../src/core/storage/local-s3.ts";

const [port, directory] = process.argv.slice(2);
if (!port || !directory) {
  console.error("usage: s3-server.ts <port> <directory>");
  process.exit(2);
}
const server = await startLocalS3(
  `http://127.0.0.1:${port}`,
  { accessKeyId: "test", secretAccessKey: "test" },
  directory,
  createLogger("s3", "silent"),
);
if (!server) {
  console.error(`port ${port} is already in use`);
  process.exit(1);
}
console.log("ready");
process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
