// Every Redis key and channel Sluice uses.
export function statusKeys(namespace: string) {
  return {
    upload: (id: string) => `${namespace}:upload:${id}`,
    progressChannel: (id: string) => `${namespace}:progress:${id}`,
  };
}
