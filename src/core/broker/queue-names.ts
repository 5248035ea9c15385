/** Every RabbitMQ queue name Sluice uses, built from the namespace (SLUICE_NAMESPACE). */
export function queueNames(namespace: string) {
  return {
    batches: `${namespace}.batches`,
    dead: `${namespace}.batches.dead`,
    retry: (attempt: number) => `${namespace}.batches.retry.${attempt}`,
  };
}
