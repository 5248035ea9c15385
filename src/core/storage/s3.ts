// The S3 client for AWS itself or any S3-compatible endpoint (LocalStack, s3rver, MinIO).
import {
  CreateBucketCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import type { Config } from "../config.ts";

export function createS3(s3: Config["s3"]): S3Client {
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
  });
}

export async function bucketExists(client: S3Client, bucket: string): Promise<boolean> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) {
      return false;
    }
    throw err;
  }
}

export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  if (!(await bucketExists(client, bucket))) {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  }
}

export async function putJson(
  client: S3Client,
  bucket: string,
  key: string,
  body: Uint8Array,
  signal?: AbortSignal,
): Promise<void> {
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: "application/json" }),
    { abortSignal: signal },
  );
}
