/** Errors of catalog operations, each with the HTTP status the API answers with. */

/** A catalog operation that cannot be done as asked; `status` is the HTTP status for it. */
export class CatalogError extends Error {
  override name = 'CatalogError';
  constructor(readonly status: 400 | 404 | 409 | 412 | 503 | 507, message: string) {
    super(message);
  }
}
