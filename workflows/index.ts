export { storeSmoke } from './smoke/store-smoke';
