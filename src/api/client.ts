/** A small client of the management API (used by the CLI and tests). */

/** An API call that failed: HTTP status (0 when unreachable) and the server's message. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Client of one node's management API at `baseUrl` (e.g. http://127.0.0.1:7001). */
export class ApiClient {
  constructor(readonly baseUrl: string, private readonly token: string, private readonly timeoutMs = 10000) {}

  /**
   * Sends a request; resolves with the parsed JSON body of a 2xx reply.
   * @throws ApiError with the status and the server's `error` text otherwise (status 0: unreachable).
   */
  async call<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    let r: Response;
    try {
      r = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new ApiError(0, `${this.baseUrl} unreachable: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`);
    }
    const text = await r.text();
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch {
      json = { error: text };
    }
    if (!r.ok) throw new ApiError(r.status, (json as { error?: string }).error ?? `HTTP ${r.status}`);
    return json as T;
  }
}
