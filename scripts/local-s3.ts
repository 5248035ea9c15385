// The local S3-compatible server as a process of its own: the benchmark measures its CPU
// apart from the programs', and the fault suite stops and restarts it.
// Usage: node scripts/local-s3.ts <port> <directory>; prints "ready <endpoint>", stops on SIGTERM.
import { createLogger } from "../src/core/logger.ts";
import { startLocalS3 } from "../src/core/storage/local-s3.ts";

const [port, directory] = process.argv.slice(2);
if (!port || !/^\d+$/.test(port) || !directory) {
  console.error("usage: node scripts/local-s3.ts <port> <directory>");
  process.exit(2);
}

const endpoint = `http://127.0.0.1:${port}`;
const server = await startLocalS3(
  endpoint,
  { accessKeyId: "test", secretAccessKey: "test" },
  directory,
  createLogger("local-s3", "warn"),
);
if (!server) {
  console.error(`something already listens on ${endpoint}`);
  process.exit(1);
}
console.log(`ready ${endpoint}`);

let stopping = false;
const stop = () => {
  if (stopping) process.exit(1);
  stopping = true;
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
