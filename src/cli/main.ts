// The `sluice` command (and `kubectl sluice`): reads SLUICE_URL and SLUICE_API_KEY.
import { runCli } from "./cli.ts";

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  interactive: process.stderr.isTTY === true,
  env: { url: process.env.SLUICE_URL, apiKey: process.env.SLUICE_API_KEY },
});
