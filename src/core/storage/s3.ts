// The S3 client for AWS itself or any S3-compatible endpoint (LocalStack, s3rver, MinIO).

import type { Readable } from "node:stream";
import {
  type BucketLocationConstraint,
  CreateBucketCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { StandardRetryStrategy } from "@smithy/core/retry";
import type { Config } from "../config.ts";
import { DependencyTimeoutError } from "../dependencies.ts";

/** Where the client sends its requests, for messages. */
export function s3Endpoint(s3: Config["s3"]): string {
  return s3.endpoint ?? `https://s3.${s3.region}.amazonaws.com`;
}

/**
 * The SDK's timeouts as Sluice's: a connection not made within connectionTimeout, or a
 * request left unanswered for socketTimeout, names S3 and the limit it passed. The SDK also
 * calls resets and refusals TimeoutError, keeping their codes; those stay as they are.
 */
function silence(
  err: unknown,
  endpoint: string,
  timeouts: Config["timeouts"],
): DependencyTimeoutError | undefined {
  const { name, code, message } = err as { name?: unknown; code?: unknown; message?: unknown };
  if (name !== "TimeoutError" || (code !== undefined && code !== "ETIMEDOUT")) return undefined;
  const connecting = typeof message === "string" && message.includes("establish a connection");
  const ms = connecting ? timeouts.connectMs : timeouts.commandMs;
  return DependencyTimeoutError.silent("S3", endpoint, ms, { cause: err });
}

/**
 * The SDK's retries, but none after silence: another attempt would keep the caller waiting
 * as long again, once per attempt, where PostgreSQL, Redis and RabbitMQ hold it one
 * COMMAND_TIMEOUT_MS. The caller retries in its own way (a 503 with Retry-After, the batch
 * redelivered). S3's 5xx and throttling, and connections reset, are still retried here:
 * they come back at once, and the next attempt usually succeeds.
 */
class RetryUnlessSilent extends StandardRetryStrategy {
  override refreshRetryTokenForRetry(
    ...[token, errorInfo]: Parameters<StandardRetryStrategy["refreshRetryTokenForRetry"]>
  ): ReturnType<StandardRetryStrategy["refreshRetryTokenForRetry"]> {
    if (errorInfo.error instanceof DependencyTimeoutError) return Promise.reject(errorInfo.error);
    return super.refreshRetryTokenForRetry(token, errorInfo);
  }
}

export function createS3(s3: Config["s3"], timeouts: Config["timeouts"]): S3Client {
  const client = new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    // Local endpoints serve buckets by path, not by DNS name.
    forcePathStyle: s3.endpoint !== undefined,
    // A copy: the SDK tags the credentials object it is given, and the configuration's is frozen.
    credentials: s3.credentials && { ...s3.credentials },
    // Compatible servers such as s3rver reject the newer default checksum headers.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    retryStrategy: new RetryUnlessSilent(3),
    // Without these the SDK waits for ever on an endpoint that takes the connection and then
    // says nothing. The second bounds silence, not the whole request: a large object may
    // take longer than that to send.
    requestHandler: {
      connectionTimeout: timeouts.connectMs,
      socketTimeout: timeouts.commandMs,
    },
  });
  const endpoint = s3Endpoint(s3);
  // Innermost, around the HTTP handler itself, so that the retries above see Sluice's error.
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        throw silence(err, endpoint, timeouts) ?? err;
      }
    },
    { step: "deserialize", priority: "low", name: "sluiceSilence" },
  );
  return client;
}

export async function bucketExists(
  client: S3Client,
  bucket: string,
  signal?: AbortSignal,
): Promise<boolean> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal });
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) {
      return false;
    }
    throw err;
  }
}

/**
 * Makes the bucket unless it exists; running again, or alongside another program doing the
 * same, changes nothing.
 */
export async function ensureBucket(
  client: S3Client,
  bucket: string,
  signal?: AbortSignal,
): Promise<void> {
  if (await bucketExists(client, bucket, signal)) return;
  // AWS refuses a bucket outside us-east-1 whose request does not name its region.
  const region = await client.config.region();
  try {
    await client.send(
      new CreateBucketCommand({
        Bucket: bucket,
        CreateBucketConfiguration:
          region === "us-east-1"
            ? undefined
            : { LocationConstraint: region as BucketLocationConstraint },
      }),
      { abortSignal: signal },
    );
  } catch (err) {
    // Made meanwhile by another program; an existing bucket of another account stays an error.
    const name = (err as { name?: string }).name;
    const raced = name === "BucketAlreadyOwnedByYou" || name === "BucketAlreadyExists";
    if (!raced || !(await bucketExists(client, bucket, signal))) throw err;
  }
}

export async function deleteObject(client: S3Client, bucket: string, key: string): Promise<void> {
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** A stream body needs its length given: S3 refuses a PUT of unknown length. */
export async function putJson(
  client: S3Client,
  bucket: string,
  key: string,
  body: Uint8Array | Readable,
  length: number,
  signal?: AbortSignal,
): Promise<void> {
  await client.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: body,
      ContentLength: length,
      ContentType: "application/json",
    }),
    { abortSignal: signal },
  );
}
