/** One HTTP reply as test/vm/http-client.ts reports it (one JSON line each), for the suite that reads them. */
export interface Reply {
  path: string;
  status: number;
  /** The body as text when it is under 4 KiB, else null. */
  body: string | null;
  bytes: number;
  sha256: string;
  /** The client's port: which connection carried it. */
  localPort: number;
  /** Arrival, epoch ms. */
  time: number;
}
