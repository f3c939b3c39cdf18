// /docs: Swagger UI from the gateway's own copy (swagger-ui-dist), started here rather than by an inline
// script, which the Content-Security-Policy forbids.

interface SwaggerUIBundleFn {
  (options: Record<string, unknown>): unknown;
  presets: { apis: unknown };
}

const bundle = (window as unknown as { SwaggerUIBundle: SwaggerUIBundleFn }).SwaggerUIBundle;
bundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  presets: [bundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  // No badge fetched from validator.swagger.io: the docs work without the internet.
  validatorUrl: null,
  // The token pasted into Authorize stays in this page's memory.
  persistAuthorization: false,
});
