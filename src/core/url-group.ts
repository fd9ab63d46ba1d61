/** A URL group (spec §8, "topic"): a publish to it fans out to every endpoint. */
export interface Endpoint {
  /** Optional; when set it identifies the endpoint within its group. */
  name?: string;
  url: string;
}

export interface UrlGroup {
  name: string;
  endpoints: Endpoint[];
  createdAt: number;
  updatedAt: number;
}

/** Picks endpoints to remove: those matching every field given (at least one). */
export interface EndpointSelector {
  name?: string;
  url?: string;
}
