// Every Redis key and channel Sluice uses.
export function statusKeys(namespace: string) {
  return {
    upload: (id: string) => `${namespace}:upload:${id}`,
    progressChannel: (id: string) => `${namespace}:progress:${id}`,
    /** The upload bodies a tenant sends now, across every api replica (api/tenant-holds.ts). */
    receiving: (tenant: string) => `${namespace}:receiving:${tenant}`,
  };
}
