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
import type { Config } from "../config.ts";

/** Where the client sends its requests, for messages. */
export function s3Endpoint(s3: Config["s3"]): string {
  return s3.endpoint ?? `https://s3.${s3.region}.amazonaws.com`;
}

export function createS3(s3: Config["s3"], timeouts: Config["timeouts"]): S3Client {
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    // Local endpoints serve buckets by path, not by DNS name.
    forcePathStyle: s3.endpoint !== undefined,
    // A copy: the SDK tags the credentials object it is given, and the configuration's is frozen.
    credentials: s3.credentials && { ...s3.credentials },
    // Compatible servers such as s3rver reject the newer default checksum headers.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 3,
    // Without these the SDK waits for ever on an endpoint that takes the connection and then
    // says nothing. The second bounds silence, not the whole request: a large object may
    // take longer than that to send.
    requestHandler: {
      connectionTimeout: timeouts.connectMs,
      socketTimeout: timeouts.commandMs,
    },
  });
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

/** A stream body needs its length given: S3 refuses a PUT of unknown length. */
export async function deleteObject(client: S3Client, bucket: string, key: string): Promise<void> {
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

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
