/**
 * The publishing side of seed 000 (drive-collector's QStashService), with the
 * official `@upstash/qstash` Client pointed at Courier: the only change from
 * hosted QStash is QSTASH_URL. Messages go to the gateway's URL; Courier
 * signs each attempt for that URL, as QStash would.
 */
import { Client } from '@upstash/qstash';

export type TaskKind = 'download' | 'upload' | 'batch';

export const TASK_PATHS: Record<TaskKind, { current: string; legacy: string }> = {
  download: { current: '/api/tasks/download', legacy: '/api/tasks/download-tasks' },
  upload: { current: '/api/tasks/upload', legacy: '/api/tasks/upload-tasks' },
  batch: { current: '/api/tasks/batch', legacy: '/api/tasks/media-batch' },
};

export interface PublishedTask {
  /** The taskId (download, upload) or groupId (batch): what the instance reports back. */
  ref: string;
  kind: TaskKind;
  path: string;
  messageId: string;
}

export interface Publisher {
  publish(kind: TaskKind, ref: string, options?: { legacyPath?: boolean }): Promise<PublishedTask>;
}

export interface PublisherOptions {
  /** QSTASH_URL: Courier's base URL. */
  courierUrl: string;
  /** QSTASH_TOKEN */
  token: string;
  /** LB_WEBHOOK_URL: the gateway. */
  gatewayUrl: string;
  /** Attempts after the first; enough to outlast the demo's outage. */
  retries: number;
  /** Upstash-Retry-Delay, milliseconds (an expression may use `retried`); a Retry-After from the gateway takes precedence. */
  retryDelay: string;
}

export function createPublisher(options: PublisherOptions): Publisher {
  const client = new Client({ baseUrl: options.courierUrl, token: options.token });
  return {
    async publish(kind, ref, { legacyPath = false } = {}) {
      const path = legacyPath ? TASK_PATHS[kind].legacy : TASK_PATHS[kind].current;
      const _meta = { triggerSource: 'direct-qstash', instanceId: 'publisher', timestamp: Date.now(), caller: 'examples/seed-000/publisher.ts' };
      const body = kind === 'batch' ? { groupId: ref, taskIds: [`${ref}-a`, `${ref}-b`], _meta } : { taskId: ref, type: kind, _meta };
      const { messageId } = await client.publishJSON({
        url: options.gatewayUrl + path,
        body,
        retries: options.retries,
        retryDelay: options.retryDelay,
      });
      return { ref, kind, path, messageId };
    },
  };
}
