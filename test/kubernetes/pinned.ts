// What counts as a pinned version: a release number to the patch (1.2.3, optionally with a
// suffix such as -management), or an image digest. A floating tag (latest, 17, 4.1-management)
// moves under the same name, so an install is not repeatable with it.

/** A release version, major.minor.patch with an optional suffix. */
export function pinnedVersion(version: string): boolean {
  return /^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/.test(version);
}

/**
 * An image reference whose tag is a pinned version, or that names a digest. PostgreSQL's
 * releases have two numbers (17.5; 17 alone is the newest 17.x), so its images may too.
 */
export function pinnedImage(reference: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(reference)) return true;
  const name = reference.split("/").at(-1) ?? "";
  const colon = name.lastIndexOf(":");
  if (colon <= 0) return false;
  const [repository, tag] = [name.slice(0, colon), name.slice(colon + 1)];
  if (/^postgres(ql)?$/.test(repository) && /^\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/.test(tag)) return true;
  return pinnedVersion(tag);
}
