// One JSON logger per program, made in main.ts and handed down as children.
import { pino } from "pino";

export type Logger = pino.Logger;

export function createLogger(name: string, level: string): Logger {
  return pino({
    level,
    base: { program: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Credentials in connection URLs and request headers never reach a log line.
    redact: {
      paths: ["*.password", "*.authorization", "req.headers.authorization"],
      censor: "[redacted]",
    },
  });
}
