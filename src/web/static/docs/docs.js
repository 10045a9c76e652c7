// Starts Swagger UI on this service's own OpenAPI document. A file of its own, not the inline
// script of Swagger UI's stock page: the page's Content-Security-Policy allows no inline script.
'use strict';

window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  // The base layout has no top bar for loading other documents: this page documents one service.
  layout: 'BaseLayout',
  presets: [SwaggerUIBundle.presets.apis],
  // Otherwise Swagger UI sends the document to validator.swagger.io for a badge: the docs must
  // work where nothing outside the service is reachable, and the document is not theirs to see.
  validatorUrl: null,
  tryItOutEnabled: false,
  displayRequestDuration: true,
});
